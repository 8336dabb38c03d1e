"""How far a replay has come: bytes read of the input, and a progress line on a terminal.

:class:`InputPosition` reads, from any thread, where an
:class:`~pytracee.engine.reader.EventReader` is in its input: the bytes read of the
regular files (through the kernel's file offset of the descriptor being read, so
reading costs nothing extra), their total size, and whether records are waiting to be
read (a file not read to its end, a pipe with data in it). The metrics' health check
and :class:`ProgressLine` use it.

:class:`ProgressLine` is ``tracee-rules``' progress on long replays: when stderr is a
terminal, one line redrawn in place at most every :data:`REDRAW_SECONDS`::

    tracee-rules: 1,204,330 events, 181,022 events/s, 212.4 of 530.0 MiB (40%), 3 findings

It runs on its own thread and reads counters the replay keeps anyway, so the replay
pays nothing for it; it prints nothing when stderr is not a terminal, and erases its
line before a log message, a finding printed (registered as a plugin, it implements
``tracee_finding_output``: findings may go to the same terminal) and the summary.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Final

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..reader import EventReader

__all__ = ["REDRAW_SECONDS", "InputPosition", "ProgressLine"]

#: Seconds between two redraws of the progress line.
REDRAW_SECONDS: Final = 0.5
_MIB: Final = 1 << 20


class InputPosition:
    """Where a reader is in its inputs (safe to ask from another thread).

    :param reader: the reader; its ``sources`` are the inputs.
    """

    def __init__(self, reader: EventReader) -> None:
        self.reader = reader
        sizes = [_regular_size(source) for source in reader.sources]
        #: Bytes of all inputs, when every one is a regular file (or stdin redirected from one).
        self.total: int | None = None if None in sizes else sum(size or 0 for size in sizes)

    def bytes_read(self) -> int:
        """Bytes read so far (of regular files; a pipe counts 0); under ``--workers``, by the slowest."""
        if self.reader.workers_position is not None:
            return self.reader.workers_position[0]
        fd = self.reader.current_fd
        return self.reader.completed_bytes + (_offset(fd) if fd is not None else 0)

    def waiting(self) -> bool:
        """True when the input being read has data not read yet (under ``--workers``: a worker
        is still reading)."""
        if self.reader.workers_position is not None:
            return self.reader.workers_position[1]
        fd = self.reader.current_fd
        if fd is None:
            return False
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode):
                return os.lseek(fd, 0, os.SEEK_CUR) < info.st_size
            pending = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            return bool(struct.unpack("i", pending)[0])
        except OSError:
            return False


def _regular_size(source: str) -> int | None:
    try:
        info = os.fstat(0) if source == "-" else os.stat(source)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _offset(fd: int) -> int:
    try:
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return 0


class ProgressLine:
    """A progress line on a terminal, redrawn in place by a background thread.

    :param prog: the command's name, starting the line.
    :param events: returns the events (and records) handled so far.
    :param findings: returns the findings so far.
    :param position: where the reader is (bytes read of the total), or None.
    :param stream: the terminal (default: stderr); nothing is shown when it is not a terminal.
    """

    def __init__(
        self,
        prog: str,
        events: Callable[[], int],
        findings: Callable[[], int],
        position: InputPosition | None = None,
        stream: IO[str] | None = None,
        interval: float = REDRAW_SECONDS,
    ) -> None:
        self.prog = prog
        self.events = events
        self.findings = findings
        self.position = position
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False
        self._lock = threading.Lock()
        self._samples: list[tuple[float, int]] = []

    @property
    def enabled(self) -> bool:
        """Whether the stream is a terminal (the line is drawn only there)."""
        try:
            return self.stream is not None and self.stream.isatty()
        except (ValueError, OSError):
            return False

    def start(self) -> ProgressLine:
        """Start redrawing (when the stream is a terminal)."""
        if self.enabled and self._thread is None:
            self._samples = [(time.monotonic(), self.events())]
            for handler in logging.getLogger().handlers:  # a message clears the line first
                handler.addFilter(self._clear_for_message)
            self._thread = threading.Thread(target=self._run, name="pytracee-progress", daemon=True)
            self._thread.start()
        return self

    def _clear_for_message(self, record: logging.LogRecord) -> bool:
        self.clear()
        return True

    def clear(self) -> None:
        """Erase the line if it is shown (before other output to the terminal; redrawn later)."""
        if not self._shown:
            return
        with self._lock:
            if self._shown:
                self._write("\r\x1b[2K")
                self._shown = False

    @hookimpl(tryfirst=True)
    def tracee_finding_output(self) -> None:
        """A finding is about to be printed, maybe on the same terminal: erase the line first."""
        self.clear()

    def stop(self) -> None:
        """Stop and erase the line (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * self.interval + 1)
            self._thread = None
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._clear_for_message)
        with self._lock:
            if self._shown:
                self._write("\r\x1b[2K")
                self._shown = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._stop.is_set():
                    return
                self._write("\r\x1b[2K" + self.render(time.monotonic()))
                self._shown = True

    def render(self, now: float) -> str:
        """The line: events, their rate over the last few seconds, bytes read of the total, findings."""
        events = self.events()
        samples = self._samples
        samples.append((now, events))
        while len(samples) > 2 and now - samples[0][0] > 5:
            samples.pop(0)
        (then, before) = samples[0]
        rate = (events - before) / (now - then) if now > then else 0.0
        parts = [f"{events:,} events", f"{rate:,.0f} events/s"]
        if self.position is not None:
            done = self.position.bytes_read()
            total = self.position.total
            if total:
                parts.append(f"{done / _MIB:,.1f} of {total / _MIB:,.1f} MiB ({min(done, total) * 100 // total}%)")
            elif done:
                parts.append(f"{done / _MIB:,.1f} MiB")
        findings = self.findings()
        parts.append(f"{findings:,} finding{'' if findings == 1 else 's'}")
        line = f"{self.prog}: " + ", ".join(parts)
        width = _terminal_width(self.stream)
        return line[: width - 1] if width else line

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()


def _terminal_width(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0
