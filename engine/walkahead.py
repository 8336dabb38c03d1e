"""The owner walk of a ``--workers`` replay done once, by a process of its own, ahead of the workers.

Each ``tracee-rules --workers N`` worker reads the whole input and must find the owner of every
record (its process or container, :func:`~pytracee.engine.sharding.record_owner`) to skip the others'.
Done by every worker, that walk costs each of them about a tenth of what one process spends on the
whole stream. :class:`WalkAhead` does it once instead: started before the signatures are loaded, a
walker process reads the input file and leaves each record's walk in a ring of shared memory
(``engine/_recscan_ahead.h``), from which the workers' compiled loop places the records it reaches.

* The answers are the workers' own: the slot holds what their walk would read, as offsets into the
  same line, and a worker takes it only if it fits the line the worker read (its number, length
  and digest; the offsets within it). It walks a line itself wherever the walker has not been
  (yet), so a slow, stopped or failed walker, or a file written over meanwhile, costs time, never a
  record or a finding.
* The workers never wait for the walker; the walker waits for the slowest worker when it is a
  ring (:data:`SLOTS` lines) ahead, so memory stays bounded whatever the input's size.
* Only a single regular, uncompressed file is walked; the walker stops at a line that opens a JSON
  array (the reader numbers its elements itself) and leaves the rest to the workers.
* The walker ends with the run (:meth:`WalkAhead.stop`) or with the main process (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import signal
import stat
from typing import Final, NamedTuple

from .lifetime import end_with, libc_prctl
from .recscan import compiled_module as _recscan

log = logging.getLogger("pytracee")

__all__ = ["SLOTS", "WALKER_NAME", "AheadStats", "WalkAhead", "ring_for", "ring_stats"]

#: Lines the walker may be ahead of the slowest worker (the ring's slots, 64 bytes each).
SLOTS: Final = 1 << 18
#: The most workers a ring serves.
MAX_READERS: Final = 254
#: The walker process's name (``ps``, ``top``).
WALKER_NAME: Final = b"walk-ahead"
_PR_SET_NAME: Final = 15
#: The walker's end states, as ``walk_ahead`` returns them.
FINISHED: Final = 1
STOPPED: Final = 2


class AheadStats(NamedTuple):
    """What :func:`ring_stats` reads of a ring."""

    device: int
    inode: int
    #: The last line walked.
    walked: int
    #: 0 walking, :data:`FINISHED` or :data:`STOPPED`.
    state: int
    #: Per worker, the lines it placed from the ring.
    taken: tuple[int, ...]


def ring_stats(ring: object) -> AheadStats:
    """The walk a ring holds so far (``_recscan.ahead_stats``)."""
    return AheadStats(*_recscan.ahead_stats(ring))


def ring_for(
    ring: object | None, fd: int | None, index: int, decoded: frozenset[str] | None, observed: frozenset[str]
) -> object | None:
    """``ring`` if it is the walk of the file open as ``fd``, else None (its reader walks alone).
    Worker ``index`` takes the records the walker placed by the names published
    (:meth:`WalkAhead.publish`) only if ``decoded`` and ``observed`` are those names."""
    if ring is None or fd is None:
        return None
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    stats = ring_stats(ring)
    if (status.st_dev, status.st_ino) != (stats.device, stats.inode):
        return None
    try:
        _recscan.ahead_accept(ring, index, decoded, observed)
    except (ValueError, MemoryError):  # (no such worker, no memory): its reader walks alone
        return None
    return ring


class WalkAhead:
    """The walker of one input file for ``readers`` workers; :attr:`ring` goes to their readers.

    :meth:`start` returns None (and starts nothing) when the input cannot be walked ahead: not a
    single regular file, compressed, or the compiled scanner missing.
    """

    def __init__(self, ring: mmap.mmap, pid: int, path: str, readers: int, max_line_size: int) -> None:
        self.ring = ring
        self.pid: int | None = pid
        #: What it walks, and for whom: ``(path, readers, max_line_size)`` as :meth:`start` got them.
        self.walks = (path, readers, max_line_size)

    @classmethod
    def start(cls, path: str, readers: int, max_line_size: int, slots: int = SLOTS) -> WalkAhead | None:
        """Fork the walker of ``path`` for ``readers`` workers (``max_line_size`` as the reader's)."""
        if _recscan is None or not 2 <= readers <= MAX_READERS:
            return None  # (each worker past 254 walks for itself)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # (a FIFO: not waited for)
        except OSError:
            return None  # the reader reports it
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode) or os.pread(fd, 2, 0) == b"\x1f\x8b":
                os.close(fd)
                return None  # (gzip: the reader decompresses it)
            ring = mmap.mmap(-1, _recscan.ahead_size(slots), flags=mmap.MAP_SHARED)
            _recscan.ahead_init(ring, slots, readers, status.st_dev, status.st_ino)
            parent, prctl = os.getpid(), libc_prctl()
            pid = os.fork()
        except OSError as exc:  # no memory, no process left: the workers walk for themselves
            os.close(fd)
            log.debug("no walk ahead: %s", exc)
            return None
        if pid == 0:  # the walker: never returns
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                end_with(parent, prctl)
                if prctl is not None:  # its name (comm) in ps -o comm and top: told apart from the workers
                    prctl(_PR_SET_NAME, WALKER_NAME, 0, 0, 0)
                _recscan.walk_ahead(ring, fd, max_line_size, parent)
                code = 0
            finally:
                os._exit(code)
        os.close(fd)
        return cls(ring, pid, path, readers, max_line_size)

    def publish(self, decoded: frozenset[str] | None, observed: frozenset[str]) -> bool:
        """Tell the walker the events the workers decode (None: all) and those their trees are shown
        (:func:`~pytracee.engine.sharding.placement_names`), once the signatures are loaded: from then
        on it places a record nobody decodes by its line, as the workers would, without walking it
        (while such records are common enough for the question to pay: ``_recscan_ahead.h``).
        False when the names do not fit in the ring (it walks every record then)."""
        return bool(_recscan.ahead_names(self.ring, decoded, observed))

    def stats(self) -> AheadStats:
        """How far the walker went, and how many lines each worker placed from its ring."""
        return ring_stats(self.ring)

    def stop(self) -> None:
        """End the walker (done or not) and wait for it."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
