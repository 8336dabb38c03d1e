"""The findings a run does not deliver on purpose: exceptions and repeats, always counted.

:class:`Suppression` is the one step a finding passes before the plugin hooks
(``tracee_finding_filter`` …): first the exceptions (:mod:`.exceptions`), then,
with a de-duplication window, repeats. Nothing it drops is silent: the summary
lists the counts, and :meth:`Suppression.counters` hands them to whatever
reports metrics.

**De-duplication** (``--dedup-window SECONDS``, off by default): within the
window, a finding repeating an earlier one (same signature, same process, or
same container for events in containers, same data) is counted instead of
delivered. The first finding is delivered; when the window is over, the count
of repeats is logged (``TRC-107 on container 5e3f…: 63 repeats in 60 s``) and the
next repeat is delivered again. The window runs on the events' timestamps, so a
replay behaves as the live run did.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import orjson

from ..findings import Finding
from .exceptions import ExceptionRule, ExceptionSet

__all__ = ["Deduplicator", "Suppression"]

log = logging.getLogger("pytracee")

#: Most (signature, process, data) keys remembered; the oldest are reported and forgotten beyond.
MAX_DEDUP_KEYS: Final = 100_000


@dataclass(slots=True)
class _Window:
    start: int  # ns
    repeats: int = 0


class Deduplicator:
    """Counts findings repeating one delivered less than ``window`` seconds before (event time)."""

    def __init__(self, window: float) -> None:
        self.window_ns = int(window * 1e9)
        self.window = window
        self._open: OrderedDict[tuple[str, str, bytes], _Window] = OrderedDict()
        #: Repeats not delivered, by signature ID.
        self.repeats: Counter[str] = Counter()

    @staticmethod
    def key(finding: Finding) -> tuple[str, str, bytes]:
        """(signature ID, ``container:ID`` or ``pid:HOSTPID``, a digest of the data): a bounded size
        whatever the data holds (an environment variable of 4 KiB, say)."""
        event = finding.event
        container = event.container_id
        where = f"container:{container[:64]}" if container else f"pid:{event.host_process_id}"
        data = _dump(finding.data) if finding.data else b""
        import hashlib  # here: loading OpenSSL is start-up time most runs need not pay

        return finding.sig_metadata.id, where, hashlib.blake2b(data, digest_size=16).digest()

    def is_repeat(self, finding: Finding) -> bool:
        """True (and counted) when ``finding`` repeats one delivered within the window."""
        key = self.key(finding)
        now = finding.event.timestamp
        window = self._open.get(key)
        if window is not None and 0 <= now - window.start < self.window_ns:
            window.repeats += 1
            self.repeats[key[0]] += 1
            return True
        if window is not None:
            self._report(key, window)
        elif len(self._open) >= MAX_DEDUP_KEYS:
            self._report(*self._open.popitem(last=False))
        self._open.pop(key, None)
        self._open[key] = _Window(now)
        return False

    def _report(self, key: tuple[str, str, bytes], window: _Window) -> None:
        if window.repeats:
            where = key[1].replace(":", " ", 1)
            log.info("%s on %s: %d repeats in %g s not shown", key[0], where, window.repeats, self.window)

    def flush(self) -> None:
        """Report the counts of the windows still open (at the end of the run)."""
        for key, window in self._open.items():
            self._report(key, window)
        self._open.clear()


def _dump(data: object) -> bytes:
    """The data as bytes, one way for equal data: JSON, or its ``repr`` for what JSON cannot
    hold (an integer past 64 bits, keys of mixed types)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except TypeError:
        return repr(data).encode("utf-8", "backslashreplace")


class Suppression:
    """Exceptions, then de-duplication, for every finding of a run."""

    def __init__(self, exceptions: Iterable[ExceptionRule] = (), dedup_window: float = 0.0) -> None:
        self.exceptions = ExceptionSet(exceptions)
        self.dedup = Deduplicator(dedup_window) if dedup_window > 0 else None
        self.repeats_before: Counter[str] = Counter()  # of a configuration replaced by a reload

    def __bool__(self) -> bool:
        return bool(self.exceptions) or self.dedup is not None

    def suppress(self, finding: Finding) -> str | None:
        """Why ``finding`` is not to be delivered (counted): ``"exception"`` or ``"repeat"``; None: deliver it."""
        if self.exceptions.rules and self.exceptions.match(finding) is not None:
            return "exception"
        if self.dedup is not None and self.dedup.is_repeat(finding):
            return "repeat"
        return None

    def adopt(self, previous: Suppression | None) -> None:
        """Carry the counts (and open windows) of the ``previous`` configuration on (hot reload)."""
        if previous is None:
            return
        for name, count in previous.exceptions.counts.items():
            self.exceptions.counts[name] += count
        if self.dedup is not None and previous.dedup is not None:
            self.dedup.repeats.update(previous.dedup.repeats)
            self.dedup._open = previous.dedup._open
        elif previous.dedup is not None:
            previous.dedup.flush()
        self.repeats_before.update(previous.repeats_before)
        if self.dedup is None and previous.dedup is not None:
            self.repeats_before.update(previous.dedup.repeats)

    def counters(self) -> dict[str, dict[str, int]]:
        """``{"suppressed_by_exception": {name: n}, "deduplicated_by_signature": {ID: n}}`` (for metrics)."""
        repeats = Counter(self.repeats_before)
        if self.dedup is not None:
            repeats.update(self.dedup.repeats)
        return {
            "suppressed_by_exception": self.exceptions.suppressed_by_exception(),
            "deduplicated_by_signature": dict(repeats),
        }

    def finish(self) -> None:
        """End of the run: report the open de-duplication windows."""
        if self.dedup is not None:
            self.dedup.flush()

    def summary(self) -> list[str]:
        """Summary lines: suppressed by exception (those that matched), repeats by signature."""
        counters = self.counters()
        lines = []
        matched = {name: n for name, n in counters["suppressed_by_exception"].items() if n}
        if matched:
            lines.append("suppressed by exceptions: " + ", ".join(f"{name}: {n}" for name, n in matched.items()))
        if counters["deduplicated_by_signature"]:
            lines.append(
                "repeats not shown (--dedup-window): "
                + ", ".join(f"{sid}: {n}" for sid, n in sorted(counters["deduplicated_by_signature"].items()))
            )
        return lines
