"""A splitter's least work, for ``bench_commands.py --ceiling``: read a whole stream once and find
each record's worker, as a process handing the records out to ``--workers N`` would have to.

Every record is placed by the rule the workers use, with the compiled loop they run (``owners`` of
the record scanner: by its line when nobody decodes its event, else by container or host
process); the few records that loop leaves to its caller are placed as the reader places them
(:func:`pytracee.engine.sharding.record_owner`). Nothing is handed over, so apart from its own
start-up (about 0.14 s, which a splitter forked from the main process would not pay) the time
it takes is less than any real splitter's::

    .venv/bin/python benchmarks/splitter_walk.py STREAM.jsonl 2 [EVENT,EVENT,...]

prints the records of each worker. The third argument names the events the default set decodes
(:func:`bench_commands.default_set_decodes`; none: every event).
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

from pytracee.engine import _recscan  # type: ignore[attr-defined]
from pytracee.engine.reader import DEFAULT_MAX_LINE_SIZE
from pytracee.engine.sharding import record_owner

#: Bytes read at a time.
CHUNK = 4 << 20
#: What ``owners`` answers for a line it leaves to its caller.
CALLERS = 255


def owners(path: Path, count: int, decoded: Collection[str] | None) -> list[int]:
    """How many records of ``path`` each of ``count`` workers owns, each record's owner found once."""
    names = None if decoded is None else frozenset(decoded)
    placed = [0] * count
    lineno = 0
    carry = b""
    with path.open("rb", buffering=0) as stream:
        while chunk := stream.read(CHUNK):
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                carry += chunk
                continue
            data = carry + chunk[:cut] if carry else chunk[:cut]
            carry = chunk[cut:]
            found = _recscan.owners(data, lineno, count, names, DEFAULT_MAX_LINE_SIZE)
            for shard in range(count):
                placed[shard] += found.count(shard)
            if found.count(CALLERS):
                lines = data.split(b"\n")
                for index in (i for i, shard in enumerate(found) if shard == CALLERS):
                    _place(placed, lines[index], lineno + index + 1, count, decoded)
            lineno += len(found)
    if carry:
        _place(placed, carry, lineno + 1, count, decoded)
    return placed


def _place(placed: list[int], text: bytes, line: int, count: int, decoded: Collection[str] | None) -> None:
    """A line ``owners`` left to its caller, as the reader places it (a blank one is no record)."""
    if not text.strip():
        return
    if len(text) > DEFAULT_MAX_LINE_SIZE:
        placed[line % count] += 1  # reported by the worker of its line
        return
    placed[record_owner(text, line, count, decoded)] += 1


def main(argv: list[str]) -> int:
    path, count = Path(argv[0]), int(argv[1])
    decoded = frozenset(filter(None, argv[2].split(","))) if len(argv) > 2 else None
    print(" ".join(map(str, owners(path, count, decoded))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
