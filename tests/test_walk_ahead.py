"""The owner walk done once, ahead of the ``--workers`` readers (engine/walkahead.py, _recscan_ahead.h).

Property: a sharded reader given the walker's ring hands on exactly what it hands on without it
(the same events, counts and reports), whatever the records, however far the walker got; and it
does place from the ring every line the walker walked.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import tracee_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytracee.engine import recscan
from pytracee.engine.context.proctree import CONSUMED_EVENTS
from pytracee.engine.context.state import ContextSettings, EventContext
from pytracee.engine.reader import DEFAULT_MAX_LINE_SIZE, EventReader
from pytracee.engine.sharding import ObserveOthers, placement_names
from pytracee.engine.walkahead import FINISHED, STOPPED, WALKER_NAME, WalkAhead, ring_stats
from record_strategies import mutated
from test_fuzz_owner_walk import ODD_LINES
from test_fuzz_record_extract import records
from test_fuzz_record_scanner import _default_plan
from test_lazy_events import _planned_reader, _snapshot, _stream_record

pytestmark = pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built")


def _ring(path: Path, readers: int = 2, slots: int = 1 << 10) -> mmap.mmap:
    from pytracee.engine import _recscan  # type: ignore[attr-defined]

    ring = mmap.mmap(-1, _recscan.ahead_size(slots), flags=mmap.MAP_SHARED)
    status = path.stat()
    _recscan.ahead_init(ring, slots, readers, status.st_dev, status.st_ino)
    return ring


def _publish(ring: mmap.mmap, others: Any = None) -> None:
    """Publish the default plan's names (and those of ``others``' tree) for the walker, as tracee-rules does."""
    from pytracee.engine import _recscan

    wanted, admissions = _default_plan()
    assert _recscan.ahead_names(ring, *placement_names(wanted, admissions, others))


def _walk(ring: mmap.mmap, path: Path, limit: int = DEFAULT_MAX_LINE_SIZE) -> int:
    """The walker's loop, run here to the input's end (the file fits in the ring: it never waits)."""
    from pytracee.engine import _recscan

    fd = os.open(path, os.O_RDONLY)
    try:
        return _recscan.walk_ahead(ring, fd, limit, os.getppid())  # type: ignore[no-any-return]
    finally:
        os.close(fd)


def _read(path: Path, shard: tuple[int, int], ring: mmap.mmap | None) -> tuple[list[Any], int, dict[str, int]]:
    wanted, admissions = _default_plan()
    reader = EventReader([path], wanted_events=wanted, admissions=admissions, shard=shard, walk_ahead=ring)
    events = [(event.location, event.raw) for event in reader]
    return events, reader.stats.events, dict(reader.stats.skipped_by_reason)


def _records(texts: list[bytes], limit: int = DEFAULT_MAX_LINE_SIZE) -> int:
    """Lines the workers' compiled loop places (non-empty, starting with ``{``, within the limit)."""
    return sum(1 for text in texts if text[:1] == b"{" and len(text) <= limit)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(mutated(), records(), st.sampled_from([*ODD_LINES, b"", b"  "])), min_size=1, max_size=30),
    st.booleans(),
)
def test_records_placed_from_the_ring_go_where_the_workers_own_walk_puts_them(lines: list[bytes], named: bool) -> None:
    """With the names published (the records nobody decodes placed by their lines) or not."""
    texts = [line.replace(b"\n", b" ") for line in lines]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "s.jsonl")
        path.write_bytes(b"\n".join(texts) + b"\n")
        ring = _ring(path)
        if named:
            _publish(ring)
        assert _walk(ring, path) == FINISHED
        for index in range(2):
            assert _read(path, (index, 2), ring) == _read(path, (index, 2), None)
    stats = ring_stats(ring)
    assert stats.walked == len(texts)
    assert stats.taken == (_records(texts), _records(texts))  # every record placed from the ring


def test_a_partial_walk_or_another_files_walk_changes_nothing(tmp_path: Path) -> None:
    texts = [
        b'{"eventName":"sched_process_exec","hostProcessId":%d,"args":[]}' % (pid % 7) for pid in range(40)
    ] + ODD_LINES
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts[:25]) + b"\n" + texts[25][:10])  # the walker saw 25 lines, and half one
    ring = _ring(path)
    assert _walk(ring, path) == FINISHED
    with path.open("wb") as out:  # (the same file, written on)
        out.write(b"\n".join(texts) + b"\n")
    expected = [_read(path, (index, 2), None) for index in range(2)]
    assert [_read(path, (index, 2), ring) for index in range(2)] == expected
    assert ring_stats(ring).taken == (25, 25)  # the rest walked by each reader

    other = tmp_path / "other.jsonl"
    other.write_bytes(path.read_bytes())
    elsewhere = _ring(other)
    assert _walk(elsewhere, other) == FINISHED
    assert [_read(path, (index, 2), elsewhere) for index in range(2)] == expected
    assert ring_stats(elsewhere).taken == (0, 0)  # not the file it walked: left alone


def test_the_walker_stops_at_an_array_and_counts_long_lines(tmp_path: Path) -> None:
    texts = [
        b'{"eventName":"sched_process_exec","hostProcessId":3}',
        b'{"eventName":"sched_process_exec","hostProcessId":4,"pad":"' + b"x" * (2 << 20) + b'"}',  # > its buffer
        b'{"eventName":"sched_process_exec","hostProcessId":5}',
        b"\t[",
        b'{"eventName":"sched_process_exec","hostProcessId":6}',
        b"]",
        b'{"eventName":"sched_process_exec","hostProcessId":7}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    for limit in (DEFAULT_MAX_LINE_SIZE, 0):
        ring = _ring(path)
        assert _walk(ring, path, limit) == STOPPED
        stats = ring_stats(ring)
        assert stats.walked == 3  # the array's line and what follows: the readers'
        wanted, admissions = _default_plan()
        for index in range(2):
            with_ring = EventReader(
                [path],
                wanted_events=wanted,
                admissions=admissions,
                shard=(index, 2),
                walk_ahead=ring,
                max_line_size=limit,
            )
            alone = EventReader(
                [path], wanted_events=wanted, admissions=admissions, shard=(index, 2), max_line_size=limit
            )
            assert [e.location for e in with_ring] == [e.location for e in alone]
            assert with_ring.stats.skipped_by_reason == alone.stats.skipped_by_reason
        assert ring_stats(ring).taken == ((2, 2) if limit else (3, 3))  # the long line: too long, or walked


def test_the_walker_holds_no_line_longer_than_64_mib(tmp_path: Path) -> None:
    """Without a limit (--max-line-size 0) the readers take any line; the walker counts one longer
    than its largest buffer without holding it, and the readers walk it themselves."""
    texts = [
        b'{"eventName":"sched_process_exec","hostProcessId":3}',
        b'{"eventName":"sched_process_exec","hostProcessId":4,"pad":"' + b"x" * (65 << 20) + b'"}',
        b'{"eventName":"sched_process_exec","hostProcessId":5}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    ring = _ring(path)
    assert _walk(ring, path, 0) == FINISHED
    wanted, admissions = _default_plan()
    for index in range(2):
        readers = [
            EventReader(
                [path], wanted_events=wanted, admissions=admissions, shard=(index, 2), walk_ahead=r, max_line_size=0
            )
            for r in (ring, None)
        ]
        expected = [f"{path}:2"] if index == 0 else [f"{path}:1", f"{path}:3"]  # by process: 4 even, 3 and 5 odd
        assert [[e.location for e in reader] for reader in readers] == [expected, expected]
    assert ring_stats(ring).walked == 3 and ring_stats(ring).taken == (2, 2)


def test_a_walker_a_ring_ahead_waits_for_the_slowest_reader(tmp_path: Path) -> None:
    """A ring of 4 slots over 300 lines: the walker (a process) waits while one reader reads it
    all, then goes on with the second; each reader's records are what it reads without a ring."""
    texts = [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % pid for pid in range(300)]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    walker = WalkAhead.start(str(path), 2, DEFAULT_MAX_LINE_SIZE, slots=4)
    assert walker is not None
    try:
        for index in range(2):
            wanted, admissions = _default_plan()
            reader = EventReader(
                [path], wanted_events=wanted, admissions=admissions, shard=(index, 2), walk_ahead=walker.ring
            )
            if index == 1:  # reader 1 has placed nothing yet: the walker waits 4 lines ahead of it
                assert _settled(walker) == (4, 0)
            assert [e.location for e in reader] == [f"{path}:{n}" for n in range(index + 1, 301, 2)]
        assert _settled(walker) == (300, FINISHED)  # reader 1 read on to the end: so could the walker
        taken = walker.stats().taken  # reader 0 found 4 lines walked at most; reader 1 those, and more
        assert taken[0] <= 4 <= taken[1] < 150  # as it read on (a chunk at a time), the walker followed
    finally:
        pid = walker.pid
        walker.stop()
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # ended and reaped
    assert not _walkers()


def _settled(walker: WalkAhead) -> tuple[int, int]:
    """The walker's (last line walked, state) once it stops moving (at most 10 s)."""
    import time

    deadline, last = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        stats = walker.stats()
        if (stats.walked, stats.state) == last:
            return last
        last = (stats.walked, stats.state)
        time.sleep(0.05)  # (the walker sleeps 5 ms at a time when the ring is full)
    raise AssertionError(f"the walker kept moving: {last}")


def test_only_a_regular_uncompressed_file_is_walked_ahead(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "s.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"eventName":"x"}\n'))
    assert WalkAhead.start(str(packed), 2, 0) is None
    assert WalkAhead.start(str(tmp_path), 2, 0) is None  # a directory
    assert WalkAhead.start(str(tmp_path / "missing"), 2, 0) is None  # the reader reports it
    assert WalkAhead.start(str(packed), 1, 0) is None  # one process walks for itself
    assert WalkAhead.start(str(packed), 255, 0) is None  # more workers than a ring serves
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    assert WalkAhead.start(str(fifo), 2, 0) is None  # (at once: no writer waited for)
    assert not _walkers()


def test_bad_rings_are_refused() -> None:
    from pytracee.engine import _recscan

    with pytest.raises(ValueError, match="power of two"):
        _recscan.ahead_init(bytearray(1 << 20), 3, 2, 0, 0)
    with pytest.raises(ValueError, match="smaller"):
        _recscan.ahead_init(bytearray(64), 4, 2, 0, 0)
    with pytest.raises(ValueError, match="not a walk-ahead ring"):
        ring_stats(bytearray(1 << 16))
    plan = ({}, {}, None, frozenset(), 0, 2, {}, {}, (), None, frozenset(), None, 0, bytearray(1 << 16))
    with pytest.raises(ValueError, match="not a walk-ahead ring"):
        _recscan.scan_lines(b'{"eventName":"x"}\n', 0, 0, 100, plan)
    with pytest.raises(ValueError, match="bad plan"):  # a ring without shards
        _recscan.scan_lines(b"", 0, 0, 100, (*plan[:5], 0, *plan[6:]))


def _tree_replay(path: Path, shard: tuple[int, int], ring: mmap.mmap | None) -> tuple[Any, ...]:
    """A worker's reader with its process tree learning from the other worker's records: what it
    delivers and counts, and its tree."""
    context = EventContext(ContextSettings())
    reader = _planned_reader([path], context, shard, walk_ahead=ring)
    delivered = []
    for event in reader:
        context.observe(event)
        delivered.append((event.location, event.raw))
    assert context.tree is not None
    return delivered, reader.stats.events, dict(reader.stats.skipped_by_reason), _snapshot(context.tree)


#: Records whose walk the tree and the nesting check read: a process's entity id changing (a reused
#: pid), another worker's exec of it, and an event of `direct` nested deeper than the scanner reads.
def _record(name: str, pid: int, args: list[Any], **fields: Any) -> bytes:
    return json.dumps({"eventName": name, "hostProcessId": pid, **fields, "args": args}).encode()


def _path(value: str) -> dict[str, Any]:
    return {"name": "pathname", "type": "const char*", "value": value}


ENTITY_AND_NESTING = [
    _record(
        "sched_process_exec",
        3,
        [_path("/bin/a")],
        hostThreadId=3,
        threadStartTime=1000,
        processEntityId=100,
        processName="a",
    ),
    _record("ptrace", 3, [{"name": "request", "type": "long", "value": 0}], processEntityId=100, processName="a"),
    # pid 3 again, another process (its entity id differs): the other worker's tree learns it too
    _record("ptrace", 3, [{"name": "request", "type": "long", "value": 0}], processEntityId=200, processName="b"),
    _record("sched_process_exec", 4, [_path("/bin/c")], hostParentProcessId=3, parentEntityId=200, processEntityId=300),
    _record("sched_process_exec", 6, [{"name": "x", "type": "int", "value": json.loads("[" * 40 + "]" * 40)}]),
]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30, deadline=None)
@given(st.lists(_stream_record(), min_size=1, max_size=12))
def test_workers_trees_learn_the_same_from_a_ring(records: list[bytes]) -> None:
    """With their process trees learning from each other's records (the walk's entity ids and
    nesting read from the ring), the workers deliver, count and learn what they do without it."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "s.jsonl")
        path.write_bytes(b"\n".join([*ENTITY_AND_NESTING, *records]) + b"\n")
        ring = _ring(path)
        _publish(ring, ObserveOthers(CONSUMED_EVENTS, print, print, (), {}))  # (only its names are read)
        assert _walk(ring, path) in (FINISHED, STOPPED)  # (stopped at a line that opens an array)
        for index in range(2):
            assert _tree_replay(path, (index, 2), ring) == _tree_replay(path, (index, 2), None)
    assert ring_stats(ring).taken[0] >= len(ENTITY_AND_NESTING)


def test_records_nobody_decodes_are_placed_by_their_line_only_with_the_workers_own_names(tmp_path: Path) -> None:
    """Once the names are published, the walker places a record nobody decodes by its line without
    walking it; a worker takes that answer only if its own names are those published."""
    from pytracee.engine import _recscan

    texts = [b'{"eventName":"read","hostProcessId":%d}' % pid for pid in range(10)]  # nobody decodes a read
    texts += [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % pid for pid in range(10)]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    expected = [_read(path, (index, 2), None) for index in range(2)]
    ring = _ring(path)
    _publish(ring)
    assert _walk(ring, path) == FINISHED
    assert [_read(path, (index, 2), ring) for index in range(2)] == expected
    assert ring_stats(ring).taken == (20, 20)
    wanted, admissions = _default_plan()
    decoded, observed = placement_names(wanted, admissions, None)
    assert _recscan.ahead_accept(ring, 0, decoded, observed)
    assert not _recscan.ahead_accept(ring, 0, decoded | {"read"}, observed)  # a worker that decodes reads
    assert not _recscan.ahead_accept(ring, 0, decoded, observed | {"read"})
    assert not _recscan.ahead_accept(ring, 0, None, observed)
    swapped = decoded - {"sched_process_exec"} | {"read"}  # as many names, another one
    assert len(swapped) == len(decoded) and not _recscan.ahead_accept(ring, 0, swapped, observed)
    moved = _ring(path)  # a name the trees are shown, not decoded: the walker must walk its records
    assert _recscan.ahead_names(moved, decoded - {"sched_process_exec"}, frozenset({"sched_process_exec"}))
    assert _walk(moved, path) == FINISHED
    assert not _recscan.ahead_accept(moved, 0, decoded, observed)  # (the workers' names differ)
    assert _recscan.ahead_accept(moved, 0, decoded - {"sched_process_exec"}, frozenset({"sched_process_exec"}))

    other = _ring(path)  # names other than the workers': the walker places the execs by their lines too
    assert _recscan.ahead_names(other, decoded - {"sched_process_exec"}, observed)
    assert _walk(other, path) == FINISHED
    assert [_read(path, (index, 2), other) for index in range(2)] == expected
    assert ring_stats(other).taken == (0, 0)  # which the workers do not take: each walks every line itself
    assert not _recscan.ahead_names(other, decoded, observed)  # once only
    too_many = _ring(path)
    assert not _recscan.ahead_names(too_many, frozenset(f"e{n:05}" for n in range(6000)), observed)


def test_the_walker_stops_asking_who_decodes_while_nearly_every_record_is_decoded(tmp_path: Path) -> None:
    """Asking which records nobody decodes costs the walker a fifth of a walk: after 64 records of
    events that are decoded it asks one record in 16 only, walking the others, and asks every one
    again once the records nobody decodes come back. The workers place every record as before."""
    from pytracee.engine import _recscan

    texts = [b'{"eventName":"security_file_open","hostProcessId":%d}' % pid for pid in range(200)]
    texts += [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % pid for pid in range(2000)]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    expected = [_read(path, (index, 2), None) for index in range(2)]
    wanted, admissions = _default_plan()
    decoded, observed = placement_names(wanted, admissions, None)
    assert "security_file_open" in decoded and "sched_process_exec" in decoded
    ring = _ring(path, slots=1 << 12)
    # names other than the workers': to the walker nobody decodes the execs, and a worker takes no
    # slot that says so (it walks those records itself), but it takes every record walked
    assert _recscan.ahead_names(ring, decoded - {"sched_process_exec"}, observed)
    assert _walk(ring, path) == FINISHED
    assert [_read(path, (index, 2), ring) for index in range(2)] == expected
    taken = ring_stats(ring).taken
    assert taken[0] == taken[1]
    # the walker asked the first 64 file opens, then one record in 16 until it had asked 64 more: 8
    # of the other 136 file opens and 56 of the first 888 execs (the 16th, 32nd, ... record after
    # the 64th). Those 56 it placed by their lines; the other 832 it walked. With 56 of 64 asked
    # nobody's, it asked every later exec again: all placed by their lines, none walked
    assert taken[0] == 200 + 888 - 56
    asking = _ring(path, slots=1 << 12)  # the workers' own names: every record placed from the ring
    assert _recscan.ahead_names(asking, decoded, observed)
    assert _walk(asking, path) == FINISHED
    assert [_read(path, (index, 2), asking) for index in range(2)] == expected
    assert ring_stats(asking).taken == (len(texts), len(texts))


def test_a_file_written_over_in_place_is_not_placed_from_its_old_walk(tmp_path: Path) -> None:
    """The same inode, lines of the same lengths, other processes: each line's digest tells them apart."""
    path = tmp_path / "s.jsonl"
    before = [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % (10 + pid) for pid in range(20)]
    path.write_bytes(b"\n".join(before) + b"\n")
    ring = _ring(path)
    assert _walk(ring, path) == FINISHED
    after = [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % (31 + pid) for pid in range(20)]
    with path.open("r+b") as out:  # (written over, not replaced: the same device and inode)
        out.write(b"\n".join(after) + b"\n")
    for index in range(2):
        assert _read(path, (index, 2), ring) == _read(path, (index, 2), None)
    assert ring_stats(ring).taken == (0, 0)


def test_a_ring_whose_slots_point_outside_their_line_is_not_trusted(tmp_path: Path) -> None:
    """Slots written by something else than the walker (the digest right, the offsets wrong): the
    workers walk those lines themselves."""
    import struct

    from pytracee.engine import _recscan

    header, slot_size = _recscan.ahead_size(0), _recscan.ahead_size(1) - _recscan.ahead_size(0)
    assert slot_size == 64  # (the layout of _recscan_ahead.h's slots, written below)
    texts = [b'{"eventName":"sched_process_exec","hostProcessId":%d}' % pid for pid in range(1, 9)]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(texts) + b"\n")
    expected = [_read(path, (index, 2), None) for index in range(2)]
    for field, value in ((6, 10_000), (7, 2**31 - 1), (6, -5), (8, 2**31 - 1), (12, 10_000), (13, -2)):
        ring = _ring(path, slots=16)
        assert _walk(ring, path) == FINISHED
        for number in range(1, 9):  # name_at, name_len, id_at, entity_at, deepest: out of the line
            at = header + slot_size * number + 24 + 4 * (field - 4)
            ring[at : at + 4] = struct.pack("<i", value)
        assert [_read(path, (index, 2), ring) for index in range(2)] == expected
        assert ring_stats(ring).taken == (0, 0) or field == 13  # (deepest -2: refused; see below)
    ring = _ring(path, slots=16)
    assert _walk(ring, path) == FINISHED
    with pytest.raises(ValueError, match="another count of shards"):
        _read(path, (0, 3), ring)


def test_tracee_rules_workers_place_records_from_the_walk(tmp_path: Path) -> None:
    """End to end: the walker walks the file while the signatures load and the workers run, the
    workers place records from its ring, and the findings are one process's."""
    from test_parallel_replay import _findings, _summary, _workload

    path = tmp_path / "w.jsonl"
    stats = _workload(path, 5_000, seed=11, mix="heavy")
    one = tracee_rules("--input", str(path), "--output-template", "rawjson", "--log", "debug")
    two = tracee_rules("--input", str(path), "--output-template", "rawjson", "--workers", "2", "--log", "debug")
    assert _findings(two) == _findings(one)
    assert sum(_findings(one).values()) == sum(stats.expected_findings.values())
    assert _summary(two.stderr) == _summary(one.stderr)
    assert "walked ahead" not in one.stderr  # one process walks nothing for others
    found = re.search(
        r"walked ahead: (\d+) lines \((\w+)\); placed from the walk, per worker: (\d+), (\d+)", two.stderr
    )
    assert found is not None, two.stderr
    assert (int(found[1]), found[2]) == (5_000, "finished")
    assert all(0 < int(taken) <= 5_000 for taken in found.group(3, 4))  # (all, unless the walker lagged)


def test_a_run_that_fails_after_the_walker_started_stops_it(tmp_path: Path, monkeypatch: Any) -> None:
    from pytracee.engine.cli.tracee_rules import main

    started: list[WalkAhead | None] = []
    real_start = WalkAhead.start

    def start(*args: Any, **kwargs: Any) -> WalkAhead | None:
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(WalkAhead, "start", start)
    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"eventName":"sched_process_exec","hostProcessId":3}\n' * 100)
    assert main(["--input", str(path), "--workers", "2", "--rules", "lang:nope"]) == 2  # (a usage error)
    assert len(started) == 1 and started[0] is not None and started[0].pid is None  # started, then stopped
    assert not _walkers()  # and reaped
    assert main(["--input", str(path), "--workers", "255", "--rules", "lang:nope"]) == 2  # none: no failure


def _walkers() -> list[psutil.Process]:
    """This process's walkers, running or not reaped."""
    return [child for child in psutil.Process().children() if child.name() == WALKER_NAME.decode()]


def test_the_entry_point_starts_the_walker_only_from_a_plain_command_line(tmp_path: Path, capsys: Any) -> None:
    from pytracee.engine.cli.entry import early_walker

    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"eventName":"sched_process_exec","hostProcessId":3}\n' * 10)
    for plain in (
        ["--input", str(path), "--workers", "2", "--output-template", "rawjson"],
        ["-i", str(path), "--workers=2"],
    ):
        walker = early_walker(plain)
        assert walker is not None
        walker.stop()
        assert walker.walks == (str(path), 2, DEFAULT_MAX_LINE_SIZE)
    for doubtful in (
        ["--input", str(path)],  # one process
        ["--input", str(path), "--workers", "2", "--config", "c.yaml"],  # a file may say otherwise
        ["--input", str(path), "--input", str(path), "--workers", "2"],  # several inputs
        ["--input-tracee", f"file:{path}", "--workers", "2"],
        ["--inp", str(path), "--workers", "2"],  # abbreviated: the command's parser decides
        ["--input", str(path), "--workers", "two"],  # its parser reports it
        ["--input", str(path), "--workers"],
        ["--input", "-", "--workers", "2"],
        ["--input", str(path), "--workers", "2", "--conf", "c.yaml"],  # --config, abbreviated
        ["--input", str(path), "--workers", "2", "--max-line", "0"],
        ["--input", str(path), "--workers", "2", "--help"],  # nothing replayed
        ["--input", str(path), "--workers", "2", "--list"],
        ["--input", str(path), "--workers", "2", "--validate"],
    ):
        assert early_walker(doubtful) is None, doubtful
    assert capsys.readouterr() == ("", "")  # (nothing said: the command's parser speaks)
    assert not _walkers()


def test_tracee_rules_keeps_the_early_walker_only_if_its_options_agree(tmp_path: Path, monkeypatch: Any) -> None:
    from pytracee.engine.cli.tracee_rules import main

    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"eventName":"sched_process_exec","hostProcessId":3}\n' * 100)
    started: list[tuple[Any, ...]] = []
    real_start = WalkAhead.start

    def start(*args: Any, **kwargs: Any) -> WalkAhead | None:
        started.append(args)
        return real_start(*args, **kwargs)

    argv = ["--input", str(path), "--workers", "2", "--rules", "lang:nope"]  # (a usage error once loaded)
    for readers, restarted in ((2, []), (3, [(str(path), 2, DEFAULT_MAX_LINE_SIZE)])):
        early = real_start(str(path), readers, DEFAULT_MAX_LINE_SIZE)
        assert early is not None
        monkeypatch.setattr(WalkAhead, "start", start)
        started.clear()
        assert main(argv, early) == 2
        monkeypatch.setattr(WalkAhead, "start", real_start)
        assert early.pid is None and started == restarted  # kept (then stopped), or stopped and replaced
    assert not _walkers()


def test_an_early_walker_is_kept_only_for_the_same_file_workers_and_line_limit(tmp_path: Path) -> None:
    import argparse

    from pytracee.engine.cli.tracee_rules import _walk_ahead

    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"eventName":"sched_process_exec","hostProcessId":3}\n' * 10)
    plain = {"workers": 2, "list": False, "list_events": False, "list_params": False, "validate": False}
    for other, kept in (({}, True), ({"max_line_size": 0}, False), ({"workers": 3}, False), ({"list": True}, False)):
        early = WalkAhead.start(str(path), 2, DEFAULT_MAX_LINE_SIZE)
        assert early is not None
        args = argparse.Namespace(**{**plain, "max_line_size": DEFAULT_MAX_LINE_SIZE, **other})
        walker = _walk_ahead(args, [str(path)], early)
        try:
            assert (walker is early) == kept, other
            assert kept or early.pid is None  # stopped when not kept
            assert walker is None or walker.walks == (str(path), args.workers, args.max_line_size)
        finally:
            for started in (walker, early):
                if started is not None:
                    started.stop()
    assert not _walkers()


def test_the_entry_point_imports_only_what_the_walker_needs() -> None:
    import subprocess
    import sys

    probe = "import sys, pytracee.engine.cli.entry; print(sorted(m for m in sys.modules if m.startswith('pytracee.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    modules = ("", "._recscan", ".cli", ".cli.entry", ".compiled", ".lifetime", ".recscan", ".walkahead")
    assert loaded.strip() == str([f"pytracee.engine{name}" for name in modules])  # not the reader, nor the engine
    from pytracee.engine.cli import entry

    assert entry.DEFAULT_MAX_LINE_SIZE == DEFAULT_MAX_LINE_SIZE  # its copy (not imported) is the reader's


def test_the_tracee_rules_command_walks_ahead_from_its_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    from test_parallel_replay import _workload

    path = tmp_path / "w.jsonl"
    _workload(path, 20_000, seed=12, mix="heavy")
    command = "from pytracee.engine.cli.entry import tracee_rules; raise SystemExit(tracee_rules())"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            command,
            "--input",
            str(path),
            "--workers",
            "2",
            "--log",
            "debug",
            "--output",
            str(tmp_path / "out.json"),
            "--output-template",
            "rawjson",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "walked ahead (from the start): 20000 lines (finished)" in result.stderr
    one = tracee_rules("--input", str(path), "--output", str(tmp_path / "one.json"), "--output-template", "rawjson")
    assert one.returncode == 0, one.stderr
    findings = [
        sorted(
            (found["SigMetadata"]["ID"], found["Context"]["hostProcessId"])
            for found in map(json.loads, (tmp_path / name).read_text().splitlines())
        )
        for name in ("out.json", "one.json")
    ]
    assert findings[0] == findings[1] and findings[0]


def test_the_engine_package_imports_its_public_names_when_first_used() -> None:
    """``pytracee.engine`` imports its public API lazily (so that the command starts its walker
    first): every name of ``__all__`` is there, from its module, and only those."""
    import subprocess
    import sys

    from pytracee import engine

    assert set(engine._PUBLIC) == set(engine.__all__)  # the lazy map and the literal list name the same
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert set(dir(engine)) >= set(engine.__all__)
    with pytest.raises(AttributeError):
        engine.Evnt  # type: ignore[attr-defined]  # noqa: B018
    probe = "import sys, pytracee.engine; print(sorted(m for m in sys.modules if m.startswith('pytracee.engine.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['pytracee.engine.compiled']"  # nothing else until used
    probe = (
        "import types, pytracee.engine.signature, pytracee.engine as e; "
        "assert not isinstance(e.signature, types.ModuleType) and e.signature is e.signature.__globals__['signature']; "
        "import pytracee.engine as f; assert f.errors.ConfigError and f.events.Event; print('ok')"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "ok\n"
