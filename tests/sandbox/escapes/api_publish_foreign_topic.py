# ruff: noqa
# Publishing on a topic the plugin did not declare.
result = api.events.publish(topic="tracker/events/auth/login", payload={"user": "admin"})
