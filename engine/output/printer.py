"""Printing findings: each rendered by a template, onto stdout or into ``--output FILE``.

Each rendered finding ends with a newline (Tracee printed them back to back, so
``rawjson`` findings ran together). Event data is attacker-chosen: text templates (every one but ``rawjson`` and ``sprig``,
whose JSON encoding escapes values) render from a copy of the finding whose strings
have control characters escaped (:func:`~pytracee.engine.safetext.escaped_finding`),
so no ``ESC [2J`` or newline from a file name reaches a terminal or splits a line.

A finding that cannot be written (``ENOSPC``,
``EIO``) is counted as not delivered and the run goes on: the summary and the exit
status (1) tell. A reader that went away (``| head``) stops the run instead, since
nobody gets further findings.

``--output FILE`` is written without a buffer, one ``write`` per finding, so a
finding is either written or counted, and closing the file cannot fail on data left
over from an earlier error.
"""

from __future__ import annotations

import io
import logging
import os
import select
import sys
from typing import IO, Protocol

from ..errors import StopRun
from ..findings import Finding
from ..hookspecs import hookimpl
from ..safetext import JSON_TEMPLATES, escaped_finding
from .sink import Sink
from .templates import FindingTemplate, TemplateDisabledError, TemplateError

__all__ = [
    "OutputFile",
    "TemplatePrinter",
    "TextOutput",
    "complete_standard_output",
    "silence_closed_output",
    "write_all",
]

log = logging.getLogger("pytracee.output")


class TextOutput(Protocol):
    """Where a :class:`TemplatePrinter` writes: a text stream, or an :class:`OutputFile`."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def complete_standard_output() -> None:
    """Make every write to ``sys.stdout`` complete, also under ``python -u`` or ``PYTHONUNBUFFERED``.

    Unbuffered, the text layer hands each write to the raw file in one system call and
    ignores how much of it was taken: a pipe whose reader lags, interrupted by a signal,
    takes part of a write and the rest is lost (half a JSON line, then the next one).
    A buffered writer finishes its writes; line buffering keeps each line as prompt as
    unbuffered output was.
    """
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(stream.buffer, io.RawIOBase):
        return
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    stream.flush()
    raw = io.FileIO(fd, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors, line_buffering=True
    )


def write_all(out: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` to a byte stream, buffered or raw (a raw file may take only part of
    a write, or none when it is non-blocking and full: the rest is written when it has room)."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None:  # a non-blocking descriptor that is full: wait for room
            select.select([], [out.fileno()], [])
            continue
        view = view[written:]


def silence_closed_output(stream: TextOutput) -> None:
    """Point a stream whose reader went away (or whose device failed) at /dev/null, so the
    interpreter's final flush stays quiet."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return
    try:
        fd = fileno()
    except (OSError, ValueError):  # closed, or not backed by a file descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class OutputFile:
    """A findings file, created or truncated, written unbuffered in UTF-8.

    Characters UTF-8 cannot carry (lone surrogates) are written as ``\\udcxx`` escapes.
    """

    def __init__(self, path: str) -> None:
        self.name = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)

    def write(self, text: str, /) -> int:
        """Write all of ``text`` (looping over short writes); ``OSError`` as the system reports it."""
        if self._fd < 0:
            raise ValueError(f"{self.name} is closed")
        data = memoryview(text.encode("utf-8", "backslashreplace"))
        while data:
            data = data[os.write(self._fd, data) :]
        return len(text)

    def flush(self) -> None:
        """Nothing to do: every write goes straight to the file."""

    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Close the file (an ``OSError`` from the system, e.g. NFS's ``EIO``, is raised)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class TemplatePrinter(Sink):
    """Writes each finding, rendered by a template, to ``stream`` (closed at the end unless it is stdout or stderr)."""

    def __init__(self, template: FindingTemplate, stream: TextOutput) -> None:
        super().__init__()
        self.template = template
        self.stream = stream
        self.write_errors = 0
        #: Whether findings are rendered from escaped copies (text templates).
        self.escapes = template.name not in JSON_TEMPLATES
        name = "stdout" if stream is sys.stdout else "stderr" if stream is sys.stderr else getattr(stream, "name", None)
        self.where = str(name) if name is not None else "the output"

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        try:
            text = self.template.render(escaped_finding(finding) if self.escapes else finding)
        except TemplateError as exc:
            urgent = isinstance(exc, TemplateDisabledError)
            self.failed(f"finding of {finding.sig_metadata.id} not printed: {exc}", urgent=urgent)
            return
        if not text.endswith("\n"):
            text += "\n"
        try:
            self._write(text)
        except BrokenPipeError:  # the reader went away (e.g. `| head`): nobody gets further findings
            silence_closed_output(self.stream)
            raise StopRun("the output was closed") from None
        except (OSError, ValueError) as exc:  # ENOSPC, EIO ...; ValueError: closed by someone else
            self.write_errors += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.failed(f"finding of {finding.sig_metadata.id} not written to {self.where}: {reason}")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
        except UnicodeEncodeError:  # a stream whose encoding cannot carry a character of the event data
            encoding = getattr(self.stream, "encoding", None) or "utf-8"
            self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        self.stream.flush()

    @hookimpl
    def tracee_sessionfinish(self) -> None:
        self.errors.flush()
        stream = self.stream
        if stream is sys.stdout or stream is sys.stderr:
            if self.write_errors:
                try:
                    stream.flush()
                except OSError:  # still failing: what is buffered is counted already; keep the exit quiet
                    silence_closed_output(stream)
            return
        close = getattr(stream, "close", None)
        if close is None:
            return
        try:
            close()
        except OSError as exc:
            self.failed(f"closing {self.where} failed, findings written to it may be lost: {exc.strerror or exc}")
