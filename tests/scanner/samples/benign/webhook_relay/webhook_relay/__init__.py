# ruff: noqa
"""Relays task events as webhook-relay events for downstream consumers."""


def on_event(api, event):
    payload = {"task": event["subject_id"], "kind": event["type"]}
    api.events.publish("tracker/events/webhook-relay/forwarded", payload)
