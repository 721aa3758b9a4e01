"""The event bus: envelope, transactional outbox, relay, transports, processor and broadcasts.

See ``docs/events.md`` for operators and ``Event`` / ``Kernel.publish`` for plugin authors.
"""

from kernel.bus.bus import Bus
from kernel.bus.envelope import Actor, Event
from kernel.bus.outbox import EventTooLarge
from kernel.bus.store import DeadLetter, EventStore
from kernel.bus.topics import TopicError, matches
from kernel.bus.transport import Transport, TransportError, TransportUnavailable

__all__ = [
    "Actor",
    "Bus",
    "DeadLetter",
    "Event",
    "EventStore",
    "EventTooLarge",
    "TopicError",
    "Transport",
    "TransportError",
    "TransportUnavailable",
    "matches",
]
