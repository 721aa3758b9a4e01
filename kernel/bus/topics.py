"""MQTT topic names, topic filters (``+`` one level, ``#`` the rest) and shared subscriptions."""

from __future__ import annotations

import re
from functools import lru_cache

EVENTS_ROOT = "tracker/events"
BROADCAST_ROOT = "tracker/broadcast"
SHARE_PREFIX = "$share/"
_LEVEL = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class TopicError(ValueError):
    """A topic name or filter is not valid MQTT, or not one TaylorDash accepts."""


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic *name* (no wildcards), else raise :class:`TopicError`."""
    if not topic or len(topic.encode()) > 65535 or "\x00" in topic:
        raise TopicError(f"invalid topic {topic!r}")
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r} contains a wildcard; wildcards belong in filters")
    return topic


def check_filter(pattern: str) -> str:
    """Return ``pattern`` if it is a valid MQTT topic filter, else raise :class:`TopicError`."""
    if not pattern or "\x00" in pattern:
        raise TopicError(f"invalid topic filter {pattern!r}")
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise TopicError(f"'#' must be a whole level at the end of the filter, got {pattern!r}")
        if "+" in level and level != "+":
            raise TopicError(f"'+' must be a whole level, got {pattern!r}")
    return pattern


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    levels = pattern.split("/")
    wildcard_tail = levels[-1] == "#"
    head = levels[:-1] if wildcard_tail else levels
    body = "/".join("[^/]*" if level == "+" else re.escape(level) for level in head)
    if wildcard_tail:
        # "a/#" matches "a" itself too: the separator before '#' is optional.
        body = body + "(?:/.*)?" if head else ".*"
    return re.compile(body + r"\Z", re.DOTALL)


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT filter ``pattern``. Topics starting with ``$`` only match
    filters that start with the same literal level, as the MQTT specification requires."""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False
    return _compiled(pattern).match(topic) is not None


def split_shared(pattern: str) -> tuple[str | None, str]:
    """``("group", "filter")`` for ``$share/group/filter``, ``(None, pattern)`` otherwise."""
    if not pattern.startswith(SHARE_PREFIX):
        return None, pattern
    group, _, rest = pattern[len(SHARE_PREFIX) :].partition("/")
    if not group or not rest or "+" in group or "#" in group:
        raise TopicError(f"invalid shared subscription {pattern!r}; expected $share/<group>/<filter>")
    return group, rest


@lru_cache(maxsize=4096)
def topic_for_type(event_type: str) -> str:
    """``projects.created`` → ``tracker/events/projects/created``."""
    levels = event_type.split(".")
    if len(levels) < 2 or not all(_LEVEL.match(level) for level in levels):
        raise TopicError(
            f"invalid event type {event_type!r}; expected <family>.<action> in lower case, e.g. 'projects.created'"
        )
    return f"{EVENTS_ROOT}/{'/'.join(levels)}"
