"""Splitting an input stream into JSON records: JSON lines and the elements of JSON arrays.

:class:`RecordSplitter` turns one byte stream into ``(text, line)`` pairs, one per
record, without ever holding more than the record size limit (plus one read chunk)
in memory, whatever arrives: a line of gigabytes, ``/dev/zero``, a gzip bomb or an
array element that never ends. It reads what is available (``read1``), so records
arriving slowly on a pipe are handed on as soon as they are complete.

A stream may mix the two forms, as concatenated Tracee outputs do: JSON lines, and
wherever a line starts with ``[``, a JSON array whose elements are records, then
lines or another array again after its closing ``]``. Problems are reported
through a callback with their line and the splitter goes on with the next
record; only an array left open at the end of the input loses its tail, and that
is reported too.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

from .compiled import let_signals_in

__all__ = ["CHUNK_SIZE", "RecordSplitter", "TruncatedInput"]

#: Bytes asked for per read; a read returns less when less is available (a pipe).
CHUNK_SIZE: Final = 1 << 20

#: ``report(line, reason, detail)``: a record was skipped.
Report = Callable[[int, str, str], None]
#: ``(scan_lines, plan, skipped)``: the compiled scanner's loop over a chunk's lines
#: (:mod:`.recscan`), what it is told, and ``skipped(n)`` for the records it counted and left out.
Scanning = tuple[Callable[..., Any], tuple[Any, ...], Callable[[int], None]]

_OUTSIDE_STRING: Final = re.compile(r'["\[\]{},]')
_STRING_BODY: Final = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SPACE: Final = " \t\r\n"


class TruncatedInput(Exception):
    """The stream broke off (e.g. a damaged gzip file); the message says how."""


class RecordSplitter:
    """Iterate over the records of one stream as ``(text, line, scanned)``.

    :param stream: a binary stream; ``read1`` is used when it has one.
    :param limit: longest record in bytes (0: no limit); longer ones are reported
        as ``line too long`` / ``record too long`` and skipped without being held.
    :param report: called for each skipped record.
    :param scanning: the compiled scanner's loop (:data:`Scanning`): JSON lines are then
        split and scanned a chunk at a time in C, and ``scanned`` is the scanner's answer
        (``False``: not sure); records it leaves out are not yielded. ``scanned`` is ``None``
        for the records it did not look at (array elements, lines starting with a blank).
    """

    def __init__(self, stream: IO[bytes], limit: int, report: Report, scanning: Scanning | None = None) -> None:
        self._read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
        self._limit = limit or sys.maxsize
        self._report = report
        self._pushback = b""
        self._lines_done = 0  # lines wholly consumed before the pushed-back data
        self._scanning = scanning

    def _chunk(self) -> bytes:
        if self._pushback:
            data, self._pushback = self._pushback, b""
            return data
        # Compiled, the loops over chunks run no interpreted code in which Python would handle a
        # signal (Ctrl-C, SIGTERM): one that came while the last chunk was read, or with this one
        # (or with the end of the input: a read that returns is not interrupted), is handled here.
        let_signals_in()
        data = self._read(CHUNK_SIZE)
        let_signals_in()
        return data

    # --- JSON lines ------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[bytes, int, Any]]:
        scanning = self._scanning
        return self._split() if scanning is None else self._scanned(scanning)

    def _split(self) -> Iterator[tuple[bytes, int, Any]]:  # noqa: C901 - the hot loop, in one piece
        limit = self._limit
        carry = b""  # the start of a line whose newline has not arrived yet
        skipping = False  # inside a line over the limit, dropping it up to its newline
        lineno = 0  # lines completed so far
        while True:
            try:
                chunk = self._chunk()
            except TruncatedInput as exc:
                self._report(lineno + 1, "truncated input", str(exc))
                return
            if not chunk:
                break
            parts = chunk.split(b"\n")
            if skipping:
                if len(parts) == 1:
                    continue
                skipping = False
                lineno += 1
                del parts[0]
            else:
                parts[0] = carry + parts[0]
            carry = parts.pop()
            switched = False
            for index, line in enumerate(parts):
                lineno += 1
                if line[:1] != b"{":
                    stripped = line.strip()
                    if not stripped:
                        continue
                    if stripped[:1] == b"[":
                        self._pushback = b"\n".join(parts[index:]) + b"\n" + carry
                        self._lines_done = lineno - 1
                        switched = True
                        break
                if len(line) > limit:
                    self._too_long(lineno, f"{len(line)} bytes")
                    continue
                yield line, lineno, None
            if switched:
                yield from self._array()
                lineno, carry = self._lines_done, b""
                continue
            if carry[:1] != b"{" and carry.lstrip()[:1] == b"[":  # a one-line array may be long
                self._pushback, self._lines_done, carry = carry, lineno, b""
                yield from self._array()
                lineno = self._lines_done
            elif len(carry) > limit:
                self._too_long(lineno + 1, f"more than {limit} bytes")
                carry, skipping = b"", True
        if carry.strip() and not skipping:
            if len(carry) > limit:
                self._too_long(lineno + 1, f"{len(carry)} bytes")
            else:
                yield carry, lineno + 1, None

    def _scanned(self, scanning: Scanning) -> Iterator[tuple[bytes, int, Any]]:  # noqa: C901 - the hot loop, in one piece
        """:meth:`_split`'s lines, a chunk at a time through the compiled scanner; the lines it
        stops at (blank, an array, too long, not starting with ``{``) are handled here alike."""
        scan_lines, plan, skipped = scanning
        limit = self._limit
        carry = b""
        skipping = False
        lineno = 0
        while True:
            try:
                chunk = self._chunk()
            except TruncatedInput as exc:
                self._report(lineno + 1, "truncated input", str(exc))
                return
            if not chunk:
                break
            if skipping:  # the rest of a line over the limit, up to its newline
                pos = chunk.find(b"\n") + 1
                if not pos:
                    continue
                skipping = False
                lineno += 1
                segments = [(chunk, pos)]
            elif carry:  # the line begun in the last chunk, alone: the chunk itself is not copied
                end = chunk.find(b"\n") + 1
                segments = [(carry + chunk[:end], 0), (chunk, end)] if end else [(carry + chunk, 0)]
            else:
                segments = [(chunk, 0)]
            switched = False
            for segment, (data, pos) in enumerate(segments):
                while True:
                    records, pos, lineno, left_out = scan_lines(data, pos, lineno, limit, plan)
                    if left_out:
                        skipped(left_out)
                    yield from records
                    end = data.find(b"\n", pos)
                    if end < 0:
                        break
                    if records and data[pos : pos + 1] == b"{" and end - pos <= limit:
                        continue  # the scanner paused after a record that changes the process tree
                    start, pos = pos, end + 1
                    line = data[start:end]  # a line the scanner stopped at
                    lineno += 1
                    if line[:1] != b"{":
                        stripped = line.strip()
                        if not stripped:
                            continue
                        if stripped[:1] == b"[":
                            rest = b"".join(later[at:] for later, at in segments[segment + 1 :])
                            self._pushback, self._lines_done, switched = data[start:] + rest, lineno - 1, True
                            break
                    if len(line) > limit:
                        self._too_long(lineno, f"{len(line)} bytes")
                        continue
                    yield line, lineno, None
                if switched:
                    break
            if switched:
                yield from self._array()
                lineno, carry = self._lines_done, b""
                continue
            carry = data[pos:]
            if carry[:1] != b"{" and carry.lstrip()[:1] == b"[":  # a one-line array may be long
                self._pushback, self._lines_done, carry = carry, lineno, b""
                yield from self._array()
                lineno = self._lines_done
            elif len(carry) > limit:
                self._too_long(lineno + 1, f"more than {limit} bytes")
                carry, skipping = b"", True
        if carry.strip() and not skipping:
            if len(carry) > limit:
                self._too_long(lineno + 1, f"{len(carry)} bytes")
            else:
                yield carry, lineno + 1, None

    def _too_long(self, line: int, size: str) -> None:
        self._report(line, "line too long", f"{size}; the limit is {self._limit} (--max-line-size)")

    # --- JSON arrays -----------------------------------------------------------------

    def _array(self) -> Iterator[tuple[bytes, int, Any]]:
        """The elements of the array starting in the pushed-back data; afterwards the
        data following its ``]`` is pushed back and ``_lines_done`` updated."""
        return _ArrayScanner(self).elements()


class _ArrayScanner:
    """One JSON array, element by element.

    Elements are found with the json module's scanner and handed on as text for the
    caller to decode (and validate) exactly like a line. An element that does not
    parse, is too long or too deep is skipped up to the next top-level ``,`` or
    ``]`` by a small state machine that keeps no more than a chunk in memory.
    """

    def __init__(self, splitter: RecordSplitter) -> None:
        self.splitter = splitter
        self.limit = splitter._limit
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.buffer = ""
        self.pos = 0
        self.eof = False
        #: The input ended inside a skipped element (already reported).
        self.tail_reported = False
        self._line = splitter._lines_done + 1  # the line number at buffer[_counted]
        self._counted = 0
        self._ends_with_newline = False

    def line_at(self, position: int) -> int:
        if position > self._counted:
            self._line += self.buffer.count("\n", self._counted, position)
            self._counted = position
        return self._line

    def more(self) -> bool:
        """Append the next chunk, dropping what lies before ``pos``; False at the end."""
        if self.eof:
            return False
        try:
            chunk = self.splitter._chunk()
        except TruncatedInput as exc:
            self.report(len(self.buffer), "truncated input", str(exc))
            chunk = b""
        self.line_at(self.pos)
        self.buffer, self.pos, self._counted = self.buffer[self.pos :], 0, 0
        if not chunk:
            self.eof = True
            self.buffer += self.decoder.decode(b"", final=True)
            return False
        self.buffer += self.decoder.decode(chunk)
        self._ends_with_newline = chunk.endswith(b"\n")
        return True

    def next_char(self) -> str:
        """The next non-blank character (not consumed), or "" at the end of the input."""
        while True:
            buffer, pos = self.buffer, self.pos
            while pos < len(buffer) and buffer[pos] in _SPACE:
                pos += 1
            self.pos = pos
            if pos < len(buffer):
                return buffer[pos]
            if not self.more():
                return ""

    def report(self, position: int, reason: str, detail: str) -> None:
        self.splitter._report(self.line_at(position), reason, detail)

    def elements(self) -> Iterator[tuple[bytes, int, Any]]:
        decode = json.JSONDecoder().raw_decode
        self.next_char()
        self.pos += 1  # the '['
        expect_value = True
        count = 0
        while True:
            char = self.next_char()
            if char == "]" and (not expect_value or not count):
                self.pos += 1
                break
            if char == "":
                if not self.tail_reported:
                    self.report(self.pos, "invalid JSON", "the array is not closed with ']'; the input ends inside it")
                break
            if not expect_value:
                if char != ",":
                    self.report(self.pos, "invalid JSON", f"expected ',' or ']' between array elements, found {char!r}")
                    self.skip_element()
                    continue
                self.pos += 1
                expect_value = True
                continue
            start = self.pos
            if char in ",]":
                self.report(start, "invalid JSON", f"expected an array element, found {char!r}")
                if char == "]":
                    self.pos += 1
                    break
                self.pos += 1
                continue
            while True:
                try:
                    _, end = decode(self.buffer, self.pos)
                except json.JSONDecodeError as exc:
                    if not self.eof and len(self.buffer) - self.pos <= self.limit and self.more():
                        continue
                    self.skip_bad(exc)
                    break
                except RecursionError:
                    self.report(self.pos, "too deeply nested", "the array element nests too deeply to be read")
                    self.skip_element()
                    break
                if end == len(self.buffer) and not self.eof and self.more():
                    continue  # a number may go on in the next chunk
                if end - self.pos > self.limit:
                    self._skip_long()
                    break
                text = self.buffer[self.pos : end]
                yield text.encode("utf-8", "surrogateescape"), self.line_at(self.pos), None
                self.pos = end
                break
            expect_value = False
            count += 1
        self._finish()

    def _finish(self) -> None:
        """Push back what follows the array for the line reader."""
        rest = self.buffer[self.pos :] if self.eof else self.buffer[self.pos :] + self.decoder.decode(b"", final=True)
        self.splitter._lines_done = self.line_at(self.pos) - 1
        self.splitter._pushback = rest.encode("utf-8", "surrogateescape")

    def skip_bad(self, exc: json.JSONDecodeError) -> None:
        if len(self.buffer) - self.pos > self.limit:
            self._skip_long()
            return
        line = self.line_at(self.pos) + self.buffer.count("\n", self.pos, max(exc.pos, self.pos))
        self.report(self.pos, "invalid JSON", f"{exc.msg} (line {line}, column {exc.colno})")
        self.skip_element()

    def _skip_long(self) -> None:
        self.report(self.pos, "record too long", f"an array element of more than {self.limit} bytes (--max-line-size)")
        self.skip_element()

    def skip_element(self) -> None:
        """Move to the ``,`` or ``]`` ending the current element, holding at most a chunk.

        When the input ends first, every line after the element's start was skipped with it:
        that is reported with the lines it covered (the array never closed)."""
        first = self.line_at(self.pos)
        depth = 0
        in_string = False
        while True:
            buffer = self.buffer
            if in_string:
                end = _STRING_BODY.match(buffer, self.pos).end()  # type: ignore[union-attr]
                if end < len(buffer) and buffer[end] == '"':
                    self.pos, in_string = end + 1, False
                    continue
                self.pos = end  # a lone backslash at the end stays for the next chunk
                if not self.more():
                    self._ends_inside(first)
                    return
                continue
            found = _OUTSIDE_STRING.search(buffer, self.pos)
            if found is None:
                self.pos = len(buffer)
                if not self.more():
                    self._ends_inside(first)
                    return
                continue
            char = found.group()
            self.pos = found.end()
            if char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif depth == 0 and char in ",]":
                self.pos -= 1
                return
            elif char in "]}" and depth:
                depth -= 1

    def _ends_inside(self, first: int) -> None:
        """The input ended inside a skipped element: report the lines after its first, if any."""
        self.tail_reported = True
        last = self.line_at(len(self.buffer)) - self._ends_with_newline
        if last > first:
            self.splitter._report(
                first,
                "invalid JSON",
                f"the input ends inside this array element: lines {first}-{last} were skipped with it",
            )
