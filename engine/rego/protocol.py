"""The frames the engine and its Rego worker process exchange over two pipes.

Every frame is a 5-byte header (kind, body length: ``<BI``) and a body:

* :data:`EVAL` (engine to worker): ``<H`` rule count, that many ``<I`` rule
  indices, then the event's JSON text. The answer is a :data:`RESULT` frame:
  ``orjson`` of ``[values, errors, slow]``: one value per rule (``null`` when
  undefined or failed), ``[[position, message], ...]`` for the rules that
  failed and ``[[position, milliseconds], ...]`` for those over the time budget.
* :data:`CALL` (engine to worker): a pickled ``(method, args)`` for loading
  rule files and the like; answered by :data:`RETURN` (the pickled result) or
  :data:`RAISE` (a pickled ``(kind, args)`` of the error).
* :data:`READY` (worker to engine, once): the worker is up.

The worker also keeps, in a small shared memory block, which rule it is
evaluating (:data:`STATE_IDLE`, :data:`STATE_INPUT`, :data:`STATE_GROUP` or a
rule index), so that the engine knows whom to blame when it must kill it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Final

__all__ = [
    "CALL",
    "EVAL",
    "HEADER",
    "RAISE",
    "READY",
    "RESULT",
    "RETURN",
    "STATE_GROUP",
    "STATE_IDLE",
    "STATE_INPUT",
    "FrameReader",
    "eval_prefix",
    "frame",
    "parse_eval",
    "write_all",
]

EVAL: Final = 1
CALL: Final = 2
RESULT: Final = 11
RETURN: Final = 12
RAISE: Final = 13
READY: Final = 14

HEADER: Final = struct.Struct("<BI")
_COUNT: Final = struct.Struct("<H")

#: The worker waits for a request.
STATE_IDLE: Final = -1
#: The worker reads an event's JSON.
STATE_INPUT: Final = -2
#: The worker evaluates several rules in one query (OPA): the culprit is one of them.
STATE_GROUP: Final = -3


def frame(kind: int, body: bytes) -> bytes:
    """A whole frame."""
    return HEADER.pack(kind, len(body)) + body


def eval_prefix(indices: tuple[int, ...]) -> bytes:
    """The start of an :data:`EVAL` body for these rules (the event's JSON follows)."""
    return _COUNT.pack(len(indices)) + struct.pack(f"<{len(indices)}I", *indices)


def parse_eval(body: bytes | memoryview) -> tuple[tuple[int, ...], memoryview]:
    """The rule indices and the JSON text of an :data:`EVAL` body."""
    view = memoryview(body)
    (count,) = _COUNT.unpack_from(view)
    end = 2 + 4 * count
    return struct.unpack_from(f"<{count}I", view, 2), view[end:]


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a pipe may take it in pieces)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Reads whole frames from a blocking file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def read(self, wait: Callable[[], None] | None = None) -> tuple[int, bytes] | None:
        """The next frame, or ``None`` at end of file.

        :param wait: called before each read of the descriptor; it may raise
            (the engine's deadline) to give up.
        """
        buffer = self._buffer
        while True:
            if len(buffer) >= HEADER.size:
                kind, length = HEADER.unpack_from(buffer)
                end = HEADER.size + length
                if len(buffer) >= end:
                    body = bytes(buffer[HEADER.size : end])
                    del buffer[:end]
                    return kind, body
            if wait is not None:
                wait()
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            buffer += chunk

    def clear(self) -> None:
        """Forget a partly read frame (the other side is gone)."""
        self._buffer.clear()
