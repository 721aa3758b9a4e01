# ruff: noqa
"""Sticky notes kept in the plugin's key-value store, shown in a random order."""

import random


def add(api, text):
    assert text, "a note needs text"
    notes = api.kv.get("notes") or []
    notes.append(text)
    api.kv.set("notes", notes)
    return len(notes)


def shuffled(api):
    notes = list(api.kv.get("notes") or [])
    random.shuffle(notes)
    return notes
