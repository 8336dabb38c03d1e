"""The owner walk of ``tracee-rules --workers`` (engine/_recscan_owner.h) against the full decoding.

Every worker reads every record and must find the same owner for it; the walk reads a record's
top level from bit masks of its quotes, backslashes, brackets and colons, without checking its
syntax. Property, for any bytes: whenever the walk answers and ``orjson`` decodes the text, the
fields it read are the decoded object's (``eventName``, ``hostProcessId``, ``containerId``,
``container.id``, where ``processEntityId``'s value is), and its nesting at least the object's. Real
Tracee records are always walked; and sharded readers still hand each event to exactly one shard,
all of a process's events to the same one.
"""

from __future__ import annotations

import json
import tempfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytracee.engine import recscan
from pytracee.engine.envelope import guess_event_name
from pytracee.engine.events import container_id_of
from pytracee.engine.reader import DEFAULT_MAX_LINE_SIZE, EventReader
from pytracee.engine.sharding import record_owner
from record_strategies import dump, events, mutated, signature_test_events, tracee_recordings
from test_fuzz_record_extract import records
from test_fuzz_record_scanner import _default_plan

pytestmark = pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built")


def owner_fields(text: bytes) -> Any:
    from pytracee.engine import _recscan  # type: ignore[attr-defined]

    return _recscan.owner_fields(text)


def owners(data: bytes, lineno: int, count: int, decoded: frozenset[str] | None, limit: int) -> bytes:
    from pytracee.engine import _recscan

    return _recscan.owners(data, lineno, count, decoded, limit)  # type: ignore[no-any-return]


#: What ``owners`` answers for a line it leaves to its caller.
CALLERS = 255


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def check(text: bytes) -> Any:
    """The property; returns the walk's answer when ``orjson`` decodes the text, else None."""
    walked = owner_fields(text)
    if walked is None:
        return None
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None  # any owner will do: the owner's full decoding rejects the record
    name, host_pid, flat_id, container_id, entity_at, deepest = walked
    assert type(raw) is dict, text
    assert raw.get("eventName") == name and name, text
    assert raw.get("hostProcessId", 0) == host_pid, text
    assert raw.get("containerId") == flat_id, text
    container = raw.get("container")
    assert (container.get("id") if isinstance(container, dict) else None) == container_id, text
    if entity_at is None:
        assert "processEntityId" not in raw, text
    else:
        value, _ = json.JSONDecoder().raw_decode(text[entity_at:].decode("utf-8", "replace"))
        assert value == raw["processEntityId"], text
    assert deepest >= _depth(raw), text  # (a block nested throughout is counted, not followed)
    return walked


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), records()))
@example(b'{"eventName":"openat","hostProcessId":5}')
@example(b'{"eventName":"openat","event\\u004eame":"execve"}')  # an escaped owner key: not sure
@example(b'{"eventName":"openat","eventName":"execve"}')  # twice: not sure
@example(b'{"s":"\\"eventName\\":\\"execve\\"","eventName":"openat"}')  # its bytes in a string
@example(b'{"a\\"eventName":"execve","eventName":"openat"}')  # after an escaped quote in a key
@example(b'{"k":{"eventName":"execve","hostProcessId":9},"eventName":"openat","hostProcessId":1}')
@example(b'{"eventName":"openat","container":{"x":{"id":"no"},"id":"yes","y":[{"id":"no"}]}}')
@example(b'{"eventName":"openat","container":{"id":"a","id":"b"}}')
@example(b'{"eventName":"openat","container":{"id":"c\\u0031"}}')  # an escape in a value read
@example(b'{"eventName":"openat","s":"{[:","t":"\\\\","u":"]}"}')  # brackets and colons in strings
@example(b'{"eventName" : "openat" , "hostProcessId" :\t-7 }')
@example(b'{"eventName":"openat"} ')
@example(b'{"eventName":"openat"}x')
@example(b'{"eventName":"openat"}{}')
@example(b'{"eventName":"openat","processEntityId":12,"args":[{"name":"a","value":{"b":[1,{"c":2}]}}]}')
def test_the_walk_reads_what_the_full_decoding_reads(text: bytes) -> None:
    check(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_odd_records_are_walked_as_decoded(raw: dict[str, Any], data: st.DataObject) -> None:
    check(dump(data.draw, raw))


@given(st.binary(max_size=256))
def test_any_bytes_give_an_exact_answer_or_none(text: bytes) -> None:
    check(text)


def test_odd_spellings_are_left_to_the_validating_scan() -> None:
    assert owner_fields(b'{"eventName":"openat","event\\u004eame":"execve"}') is None
    assert owner_fields(b'{"eventName":"openat","eventName":"execve"}') is None
    assert owner_fields(b'{"eventName":"openat","hostProcessId":1.5}') is None
    assert owner_fields(b'{"eventName":"caf\\u00e9"}') is None
    assert owner_fields(b'{"eventName":"openat"}x') is None
    assert owner_fields(b'{"eventName":"openat","s":"unterminated}') is None
    assert owner_fields(b'{"a\\"eventName":"execve","eventName":"openat"}') is None  # a key with an escape
    walked = owner_fields(b'{"s":"a\\"b\\\\","eventName":"openat","hostProcessId":-3}')  # escapes in values
    assert walked is not None and walked[:2] == ("openat", -3)


def test_tracee_records_are_walked() -> None:
    """Real Tracee output and the events of Tracee's signature tests are all walked, exactly."""
    lines = tracee_recordings()
    lines += [orjson.dumps(raw) for raw in signature_test_events() if raw.get("eventName")]
    assert len(lines) > 100
    for line in lines:
        assert check(line) is not None, line


# --- sharded readers -----------------------------------------------------------------------------

#: Records each of whose fields a walk might misread; mixed into generated streams.
ODD_LINES = [
    b'{"eventName":"security_file_open","event\\u004eame":"sched_process_exec","hostProcessId":3}',
    b'{"eventName":"sched_process_exec","eventName":"read","hostProcessId":4}',
    b'{"eventName":"read","k":{"eventName":"sched_process_exec"},"hostProcessId":5}',
    b'{"s":"\\"eventName\\":\\"sched_process_exec\\"","eventName":"read","hostProcessId":6}',
    b'{"eventName":"sched_process_exec","container":{"x":{"id":"a"},"id":"b"},"hostProcessId":7}',
    b'{"eventName":"sched_process_exec","containerId":"b","hostProcessId":8}',
    b'{"eventName":"read","hostProcessId":3} {"x":1}',
    b'{"eventName" : "read", "hostProcessId":4}',
]


def _shard_events(path: Path, shard: tuple[int, int] | None) -> tuple[list[tuple[str, Any]], int]:
    wanted, admissions = _default_plan()
    reader = EventReader([path], wanted_events=wanted, admissions=admissions, shard=shard)
    events = [(event.location, event.raw) for event in reader]
    return events, reader.stats.events + sum(reader.stats.skipped_by_reason.values())


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40, deadline=None)
@given(st.lists(st.one_of(mutated(), records(), st.sampled_from(ODD_LINES)), min_size=1, max_size=30))
def test_each_record_has_one_owner_and_a_process_one_shard(lines: list[bytes]) -> None:
    texts = [line.replace(b"\n", b" ") for line in lines]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "s.jsonl")
        path.write_bytes(b"\n".join(texts) + b"\n")
        whole, handled = _shard_events(path, None)
        shards = [_shard_events(path, (index, 2)) for index in range(2)]
    delivered = Counter(location for shard, _ in shards for location, _ in shard)
    assert sorted(delivered.elements()) == sorted(location for location, _ in whole)
    assert sum(count for _, count in shards) == handled  # read or skipped: each record once
    keys = [{container_id_of(raw) or raw.get("hostProcessId") for _, raw in shard} - {None, 0} for shard, _ in shards]
    assert not keys[0] & keys[1]
    # a splitter's loop (owners, which benchmarks/splitter_walk.py times) places each as they did
    wanted, admissions = _default_plan()
    decoded = frozenset(wanted) | frozenset(admissions)
    found = owners(b"\n".join(texts) + b"\n", 0, 2, decoded, DEFAULT_MAX_LINE_SIZE)
    assert len(found) == len(texts)
    for index, (shard, _) in enumerate(shards):
        for location, _ in shard:
            assert found[int(location.rpartition(":")[2]) - 1] in (index, CALLERS), location
    for number, text in enumerate(texts, 1):  # the records nobody decodes too: by the reader's rule
        if found[number - 1] == CALLERS:  # left to the reader only where the loop cannot place it
            assert text[:1] != b"{" or len(text) > DEFAULT_MAX_LINE_SIZE or owner_fields(text) is None, text
            continue
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # any owner will do (all run this loop): the owner's decoding rejects it
        if type(raw) is dict and raw.get("eventName") == guess_event_name(text):  # (no name nested first)
            assert found[number - 1] == record_owner(text, number, 2, decoded), text


def test_owners_leaves_to_its_caller_what_the_reader_places_itself() -> None:
    lines = [
        b'{"eventName":"execve","hostProcessId":3}',  # decoded: by its process
        b"",  # no record
        b"[1]",  # an array: the reader's
        b'{"eventName":"read","hostProcessId":3}',  # decoded by nobody: by its line (4)
        b'{"eventName":"execve","hostProcessId":5,"hostProcessId":6}',  # not sure (a key twice)
        b'{"eventName":"execve","hostProcessId":7,' + b" " * 80 + b"}",  # longer than the limit
        b'{"eventName":"execve","containerId":"c1","hostProcessId":3}',  # by its container
    ]
    data = b"\n".join(lines) + b"\n" + b'{"eventName":"execve"'  # a last line begun, not ended
    found = owners(data, 10, 3, frozenset({"execve"}), 64)
    assert list(found) == [3 % 3, CALLERS, CALLERS, 14 % 3, CALLERS, CALLERS, zlib.crc32(b"c1") % 3]
    assert list(owners(data, 0, 3, None, 0))[3] == 3 % 3  # every event decoded: by its process
    with pytest.raises(ValueError, match="count 1 to 254"):
        owners(data, 0, 255, None, 0)  # 255 is the caller's mark
    with pytest.raises(ValueError, match="Py_ssize_t"):
        owners(data, 2**63 - 7, 3, None, 0)  # the last line's number would overflow
