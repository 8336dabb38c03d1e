"""Reading recordings of older Tracee releases without reporting an attack twice.

Tracee v0.8 to v0.22 recorded some detections' evidence in events that v0.24.1's
signatures no longer read (``security_bprm_check`` for a web server running a shell,
``init_module`` and ``security_kernel_read_file`` for module loading,
``hooked_syscalls`` for syscall table hooks). The built-ins read both eras. When a
stream holds both (a recording of a later release that traced the old events too),
one action shows up as two events, one of each era, from the same process within a
moment of each other: :class:`HeldFindings` holds the older era's finding until the
newer event settles it, so each action is reported once, on the newer event when
there is one (as v0.24.1 reports it) and on the older event otherwise.

:func:`recorded_only` marks a selector of an event kept only for old recordings: it
is routed like any other, but a tracer is not asked to trace it.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

from pytracee.engine import Event, EventSelector, Signal, Signature, SignatureContext, SourceComplete

__all__ = [
    "MAX_HELD",
    "PAIRING_WINDOW_NS",
    "HeldFindings",
    "HoldsOlderFindings",
    "RecentActions",
    "process_key",
    "recorded_only",
]

#: How far apart (event timestamps, nanoseconds) the two eras' events of one action can be.
PAIRING_WINDOW_NS: Final = 1_000_000_000
#: Findings held at most per signature; beyond, the oldest is reported at once.
MAX_HELD: Final = 4096

Emit = Callable[[Event, Mapping[str, Any] | None], None]


def recorded_only(selector: EventSelector) -> EventSelector:
    """``selector``, marked as selecting an event found only in older recordings."""
    return dataclasses.replace(selector, recorded_only=True)


def process_key(event: Event) -> int:
    """The process an event belongs to on the host (its host pid, else its pid)."""
    return event.host_process_id or event.process_id


class HeldFindings:
    """Findings of the older era's events, held until the newer era's event settles them.

    :meth:`hold` keeps a finding per process; :meth:`settle` takes it back when the
    newer event of the same action arrives (the caller then reports that one instead).
    A held finding is reported (``emit``) once no newer event can belong to it any more:
    when an event more than :data:`PAIRING_WINDOW_NS` later reaches the signature
    (:meth:`expire`), when more than :data:`MAX_HELD` are held, or at the end of the
    input (:meth:`flush`). Nothing held is ever dropped.
    """

    def __init__(self, emit: Emit, window_ns: int = PAIRING_WINDOW_NS, limit: int = MAX_HELD) -> None:
        self._emit = emit
        self._window = window_ns
        self._limit = limit
        self._held: OrderedDict[int, tuple[Event, Mapping[str, Any] | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, key: int, event: Event, data: Mapping[str, Any] | None = None) -> None:
        """Hold a finding on ``event`` for process ``key`` (a finding held for it before is reported)."""
        previous = self._held.pop(key, None)
        if previous is not None:
            self._emit(*previous)
        self._held[key] = (event, data)
        if len(self._held) > self._limit:
            self._emit(*self._held.popitem(last=False)[1])

    def settle(self, key: int) -> tuple[Event, Mapping[str, Any] | None] | None:
        """Take back the finding held for process ``key`` (None when there is none)."""
        return self._held.pop(key, None)

    def expire(self, now_ns: int) -> None:
        """Report the findings held since more than the window before ``now_ns``."""
        held = self._held
        while held:
            key = next(iter(held))
            event, data = held[key]
            if now_ns - event.timestamp <= self._window:
                return
            del held[key]
            self._emit(event, data)

    def flush(self) -> None:
        """Report every held finding (the end of the input)."""
        while self._held:
            self._emit(*self._held.popitem(last=False)[1])


class RecentActions:
    """Processes whose action the newer era's event already reported, for a short while.

    For events of the older era that come *after* the newer one (``init_module`` is
    emitted when the syscall returns, after ``module_load``).
    """

    def __init__(self, window_ns: int = PAIRING_WINDOW_NS, limit: int = MAX_HELD) -> None:
        self._window = window_ns
        self._limit = limit
        self._seen: OrderedDict[int, int] = OrderedDict()

    def add(self, key: int, timestamp: int) -> None:
        """Remember that process ``key``'s action at ``timestamp`` was reported."""
        self._seen.pop(key, None)
        self._seen[key] = timestamp
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)

    def consume(self, key: int, timestamp: int) -> bool:
        """True (and forgotten) when process ``key``'s action near ``timestamp`` was already reported."""
        seen = self._seen.pop(key, None)
        return seen is not None and abs(timestamp - seen) <= self._window


class HoldsOlderFindings(Signature):
    """A signature that reads both eras' events: its older-era findings wait in
    ``self._held`` (:class:`HeldFindings`) and are all reported at the end of the input."""

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._held = HeldFindings(self.emit)

    def on_signal(self, signal: Signal) -> None:
        if isinstance(signal, SourceComplete):
            self._held.flush()

    def close(self) -> None:
        self._held.flush()
