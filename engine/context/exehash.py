"""Executable hashes: the sha256 of each executed file, computed once, off the event path.

Live, on every ``sched_process_exec`` the :class:`ExecHasher` is asked for the hash of
the file the kernel executed, identified by the event's ``dev``, ``inode`` and
``ctime`` (as Tracee's ``option:exec-hash`` keys its cache). A file seen before is
answered from the cache at once; a new one is queued for a background thread, which
opens the file through the process (``/proc/PID/exe``, then ``/proc/PID/root/PATH``,
then ``PATH``), checks it is still the same inode with the same ctime, and hashes at
most ``max_size`` bytes (larger files get no hash, counted). A file changed or gone
before it could be read gets no hash either: a hash is never that of another file.

The answer is a string, or a :class:`PendingHash` whose :meth:`~PendingHash.wait`
returns the hash once the thread is done; the event path never waits. In a replay the
hash comes from the recorded event (its ``sha256`` argument) and nothing is hashed.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Final

__all__ = ["DEFAULT_MAX_SIZE", "ExecHasher", "FileKey", "PendingHash", "kernel_dev_to_user"]

#: Files larger than this get no hash (Tracee has no bound; an attacker's 10 GB binary must
#: not keep the hashing thread busy for minutes).
DEFAULT_MAX_SIZE: Final = 64 << 20
#: Hashes kept (one per distinct executed file version).
CACHE_SIZE: Final = 8192
#: Files waiting to be hashed; beyond it, new ones get no hash (counted).
QUEUE_MAX: Final = 1024
#: Requests queued with their file open at most (the others are found again by path).
OPEN_MAX: Final = 64
_CHUNK: Final = 1 << 20

log = logging.getLogger("pytracee.exehash")

FileKey = tuple[int, int, int]  # (kernel dev, inode, ctime ns)


def kernel_dev_to_user(dev: int) -> int:
    """The kernel's ``s_dev`` (major << 20 | minor) as ``st_dev``."""
    return os.makedev(dev >> 20, dev & 0xFFFFF)


class PendingHash:
    """A hash being computed: :meth:`wait` for it."""

    __slots__ = ("_done", "_waited", "value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._waited = False
        self.value: str | None = None

    def __call__(self, timeout: float) -> str | None:
        return self.wait(timeout)

    def wait(self, timeout: float) -> str | None:
        """The hash, waiting up to ``timeout`` seconds the first time only (each finding of a
        process asks: a slow file delays one of them); None if not (yet) known."""
        if timeout > 0 and not self._waited:
            self._waited = True
            self._done.wait(timeout)
        return self.value

    @property
    def done(self) -> bool:
        """The thread finished with this file (hashed or not)."""
        return self._done.is_set()

    def _set(self, value: str | None) -> None:
        self.value = value
        self._done.set()


class ExecHasher:
    """Hashes executed files in a background thread, each (dev, inode, ctime) once.

    :param max_size: files larger than this many bytes are not hashed.
    :param proc: where procfs is mounted.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, proc: str = "/proc") -> None:
        self.max_size = max_size
        self.proc = proc
        self._cache: OrderedDict[FileKey, str | PendingHash] = OrderedDict()
        self._queue: queue.Queue[tuple[FileKey, int, str, tuple[int, ...], int, PendingHash] | None] = queue.Queue(
            QUEUE_MAX
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Files opened by :meth:`request` and still queued.
        self._open = 0
        #: Outcomes: hashed, cached, too large, changed or gone, queue full.
        self.counts: Counter[str] = Counter()

    def request(
        self, key: FileKey, host_pid: int, path: str, root_pids: Sequence[int] = ()
    ) -> str | PendingHash | None:
        """The hash of the file ``key`` executed by ``host_pid`` (at ``path``): a string when
        known, a :class:`PendingHash` while computed, None when it will not be.

        A file not seen before is opened here through ``/proc/PID/exe`` (one ``open``, so a
        process that exits at once is still hashed) and read by the thread; ``root_pids``
        (the parent's, ...) give more ways in through their ``/proc/PID/root``.
        """
        with self._lock:
            known = self._cache.get(key)
            if known is not None:
                self._cache.move_to_end(key)
                if isinstance(known, str):
                    self.counts["cached"] += 1
                    return known
                return known
            pending = PendingHash()
            fd = -1
            if self._open < OPEN_MAX:
                try:
                    fd = os.open(f"{self.proc}/{host_pid}/exe", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
                except OSError:
                    fd = -1
            try:
                self._queue.put_nowait((key, host_pid, path, tuple(root_pids), fd, pending))
            except queue.Full:
                if fd >= 0:
                    os.close(fd)
                self.counts["queue full"] += 1
                return None
            if fd >= 0:
                self._open += 1
            self._cache[key] = pending
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="pytracee-exec-hash", daemon=True)
                self._thread.start()
        return pending

    def close(self) -> None:
        """Stop the thread (files still queued get no hash)."""
        thread = self._thread
        if thread is None:
            return
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                if item[4] >= 0:
                    os.close(item[4])
                    with self._lock:
                        self._open -= 1
                item[5]._set(None)
        self._queue.put(None)
        thread.join(5)
        self._thread = None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, pid, path, roots, fd, pending = item
            if fd >= 0:
                with self._lock:
                    self._open -= 1
            try:
                digest = self._hash(key, pid, path, roots, fd)
            except Exception:
                log.debug("hashing %s failed", path, exc_info=True)
                digest = None
            with self._lock:
                if digest is not None:
                    self._cache[key] = digest
                elif self._cache.get(key) is pending:
                    del self._cache[key]  # asked again later, tried again
            pending._set(digest)

    def _hash(self, key: FileKey, pid: int, path: str, roots: tuple[int, ...], opened: int) -> str | None:
        dev, inode, ctime = key
        candidates: list[str | int] = [opened] if opened >= 0 else []
        candidates.append(f"{self.proc}/{pid}/exe")
        if path.startswith("/"):
            candidates += [f"{self.proc}/{root}/root{path}" for root in (pid, *roots)]
            candidates.append(path)
        for candidate in candidates:
            if isinstance(candidate, int):
                fd = candidate
            else:
                try:
                    fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
                except OSError:
                    continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_ino != inode or (ctime and st.st_ctime_ns != ctime):
                    continue
                if dev and st.st_dev != kernel_dev_to_user(dev) and st.st_dev != dev:
                    continue
                if st.st_size > self.max_size:
                    self.counts["too large"] += 1
                    return None
                import hashlib  # here: OpenSSL's loading is start-up time most runs need not pay

                digest = hashlib.sha256()
                remaining = self.max_size + 1
                while remaining > 0:
                    chunk = os.read(fd, min(_CHUNK, remaining))
                    if not chunk:
                        break
                    digest.update(chunk)
                    remaining -= len(chunk)
                if remaining <= 0:  # grew while read
                    self.counts["too large"] += 1
                    return None
                after = os.fstat(fd)
                if after.st_ctime_ns != st.st_ctime_ns:
                    continue  # changed while read
                self.counts["hashed"] += 1
                return digest.hexdigest()
            finally:
                os.close(fd)
        self.counts["changed or gone"] += 1
        return None
