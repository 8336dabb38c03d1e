"""Bounded tables of events waiting for their other half (a syscall and the kernel's event).

Secure tracing (:mod:`.secure_tracing`) and the syscall context of findings
(:mod:`.syscall_context`) pair a syscall event with the event the kernel raised
inside it, by thread (or process, for exec) and syscall. Either half may come first,
and either may never come (a lost event, a filtered one, a forged stream), so the
waiting events are held in a :class:`PendingEvents` table bounded by count and by
size: the oldest are forgotten first, and counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Final

import orjson
from pytracee.engine import Event

__all__ = ["MAX_PENDING", "MAX_PENDING_BYTES", "PendingEvents", "event_size"]

#: Events one table holds at most, and bytes of event JSON.
MAX_PENDING: Final = 4096
MAX_PENDING_BYTES: Final = 16 << 20


#: What an event's context (the fields besides its arguments) is counted as, in bytes.
CONTEXT_BYTES: Final = 1024


def event_size(event: Event) -> int:
    """Bytes of the event's JSON: its input line, or (live events have none) an estimate from
    its arguments' strings, cheaper than serialising it."""
    if event.text is not None:
        return len(event.text)
    size = CONTEXT_BYTES
    args = event.raw.get("args")
    if type(args) is not list:
        return size + len(orjson.dumps(args, default=str))
    for arg in args:
        value = arg.get("value") if type(arg) is dict else arg
        if type(value) is str:
            size += len(value) + 32
        elif type(value) is list:
            size += sum(len(item) + 4 if type(item) is str else 16 for item in value) + 32
        elif type(value) is dict:
            size += len(orjson.dumps(value, default=str)) + 32
        else:
            size += 32
    return size


class PendingEvents:
    """Events waiting for their other half, by key: the oldest go first when the table
    holds ``max_events`` events or ``max_bytes`` of event JSON."""

    __slots__ = ("_bytes", "_events", "forgotten", "max_bytes", "max_events")

    def __init__(self, max_events: int = MAX_PENDING, max_bytes: int = MAX_PENDING_BYTES) -> None:
        # an OrderedDict: taking the oldest out of a plain dict that keeps losing its
        # first entries scans the holes they leave (microseconds per event on a full table)
        self._events: OrderedDict[Hashable, tuple[Event, int]] = OrderedDict()
        self._bytes = 0
        self.max_events = max_events
        self.max_bytes = max_bytes
        #: Events pushed out by newer ones before their other half came.
        self.forgotten = 0

    def add(self, key: Hashable, event: Event) -> None:
        """Hold ``event`` under ``key`` (replacing an earlier one, which is not counted as forgotten)."""
        self.pop(key)
        size = event_size(event)
        events = self._events
        while events and (len(events) >= self.max_events or self._bytes + size > self.max_bytes):
            self._bytes -= events.popitem(last=False)[1][1]  # the oldest
            self.forgotten += 1
        events[key] = (event, size)
        self._bytes += size

    def get(self, key: Hashable) -> Event | None:
        """The event held under ``key``, left in the table."""
        entry = self._events.get(key)
        return entry[0] if entry is not None else None

    def pop(self, key: Hashable) -> Event | None:
        """Take out the event held under ``key``."""
        entry = self._events.pop(key, None)
        if entry is None:
            return None
        self._bytes -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._events.clear()
        self._bytes = 0
        self.forgotten = 0

    @property
    def size(self) -> int:
        """Bytes of event JSON held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._events

    def __bool__(self) -> bool:
        return bool(self._events)
