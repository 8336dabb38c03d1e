"""What every finding output shares: counting undelivered findings, and logging them without floods.

An output that cannot deliver a finding (a full disk, a webhook that answers 503)
counts it with the session: the summary reports it and the exit status becomes 1.
When the same problem hits every finding, one line per finding would bury the rest
of stderr, so :class:`Throttle` logs the first message at once and then at most one
line per interval, saying how many it held back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["THROTTLE_INTERVAL", "Sink", "Throttle"]

log = logging.getLogger("pytracee.output")

#: Seconds between two log lines of one :class:`Throttle`.
THROTTLE_INTERVAL: Final = 10.0


class Throttle:
    """Logs messages at ``level``: the first at once, then at most one per ``interval`` seconds.

    Messages in between are counted; the next line logged (or :meth:`flush`) says how
    many there were. Safe to call from several threads.
    """

    def __init__(self, level: int, interval: float = THROTTLE_INTERVAL, logger: logging.Logger = log) -> None:
        self.level = level
        self.interval = interval
        self.logger = logger
        self._lock = threading.Lock()
        self._next = 0.0
        self._held = 0
        self._last = ""

    def __call__(self, message: str, *, urgent: bool = False) -> bool:
        """Log ``message`` now, or hold it back (never when ``urgent``); returns whether it was logged."""
        now = time.monotonic()
        with self._lock:
            if now < self._next and not urgent:
                self._held += 1
                self._last = message
                return False
            held, self._held = self._held, 0
            self._next = now + self.interval
        if held:
            message += f" ({held} similar message{'s' if held > 1 else ''} held back before this one)"
        self.logger.log(self.level, "%s", message)
        return True

    def flush(self) -> None:
        """Log what was held back since the last line, if anything."""
        with self._lock:
            held, self._held = self._held, 0
            last = self._last
        if held:
            self.logger.log(self.level, "%s more like this; the last: %s", held, last)


class Sink:
    """An output plugin that reports undelivered findings to the session (exit status 1)."""

    session: Session | None = None

    def __init__(self) -> None:
        self.errors = Throttle(logging.ERROR)

    @hookimpl
    def tracee_sessionstart(self, session: Session) -> None:
        self.session = session

    def failed(self, message: str, *, urgent: bool = False) -> None:
        """Count one finding as not delivered; ``message`` is logged, throttled unless ``urgent``."""
        self.errors(message, urgent=urgent)
        self.count_failures(1)

    def count_failures(self, count: int) -> None:
        """Count ``count`` findings as not delivered, without a log line of their own."""
        if count and self.session is not None:
            self.session.output_failures += count
