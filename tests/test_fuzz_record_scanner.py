"""The compiled record scanner (engine/_recscan.c) against the full decoding.

Property: for any bytes, ``scan`` answers either ``None`` ("not sure") or exactly what
``orjson.loads`` followed by the reader's validation finds: the same event name, origin,
container id, host process id and argument values, and only for a record the reader
would accept. Records are generated like Tracee's, then mutated the ways an attacker
would (escapes, duplicate keys, decoy keys in nested objects, non-ASCII, nulls, huge
numbers, deep nesting, truncation, trailing bytes). The reader gives the same events,
counts and reports with the scanner and without it (its Python path).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytracee.engine import reader as reader_module
from pytracee.engine import recscan
from pytracee.engine.catalogue import is_known_event
from pytracee.engine.envelope import MAX_NESTING
from pytracee.engine.events import Event, LazyEvent, MalformedEventError, container_id_of, origin_of
from pytracee.engine.reader import EventReader
from pytracee.engine.session import Session, SessionConfig
from record_strategies import ARG_TABLE, dump, events, in_pieces, mutated, tracee_recordings

pytestmark = pytest.mark.usefixtures("quiet_logs")

INVALID = "invalid"
UNREADABLE_ARGS = "unreadable args"
TABLE = ARG_TABLE


def _scan(text: bytes, table: dict[str, tuple[str, ...]] = TABLE) -> Any:
    assert recscan.scan is not None, "the compiled scanner is not built: run scripts/setup.sh"
    return recscan.scan(text, table)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type next to it (``True`` is not ``1`` here)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


def expected(text: bytes, table: dict[str, tuple[str, ...]] = TABLE) -> Any:
    """What the reader's full path finds in ``text``: INVALID, or the scanner's answer."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        return INVALID
    if _depth(raw) > MAX_NESTING or type(raw) is not dict:
        return INVALID
    name = raw.get("eventName")
    answer = [name, origin_of(raw), container_id_of(raw), raw.get("hostProcessId", 0), None]
    if type(name) is str and name in table:
        try:
            args = Event(raw).args
        except MalformedEventError:
            answer[4] = UNREADABLE_ARGS
        else:
            answer[4] = {key: args[key] for key in table[name] if key in args}
    if EventReader([])._check(raw) is not None:  # a reason to skip it (the reader's own validation)
        return INVALID
    return tuple(answer)


def check(text: bytes, table: dict[str, tuple[str, ...]] = TABLE) -> Any:
    """The property; returns the scanner's answer."""
    found = _scan(text, table)
    if found is None:
        return None
    truth = expected(text, table)
    assert truth != INVALID, f"the scanner accepted a record the reader rejects: {text!r} -> {found!r}"
    assert truth[4] != UNREADABLE_ARGS, f"the scanner read arguments the event cannot: {text!r}"
    assert _typed(found) == _typed(truth), text
    return found


def _reads_a_value_it_leaves(raw: dict[str, Any]) -> bool:
    """An argument of TABLE whose value the scanner leaves to the full decoding (an array, an object, a float)."""
    names = TABLE.get(raw.get("eventName"), ())  # type: ignore[arg-type]
    return any(
        arg.get("name") in names and type(arg.get("value")) in (list, dict, float) for arg in raw.get("args", ())
    )


# --- the properties --------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_records_are_read_as_the_full_decoding_reads_them(raw: dict[str, Any], data: st.DataObject) -> None:
    check(dump(data.draw, raw))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(odd=False), st.data())
def test_plain_records_are_read(raw: dict[str, Any], data: st.DataObject) -> None:
    """Records as Tracee writes them (ASCII, no nulls, 64-bit integers): the scanner answers."""
    text = dump(data.draw, raw)
    assert check(text) is not None or _reads_a_value_it_leaves(raw), text


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
@example(b'{"args":[{"eventName":"x"}],"eventName":"execve"}')
@example(b'{"eventName":"x","eventName":"execve"}')
@example(b'{"eventName":"execve","event\\u004eame":"x"}')
def test_mutated_records_are_never_read_otherwise(text: bytes) -> None:
    check(text)


@given(st.binary(max_size=256))
def test_any_bytes_give_an_answer_or_none(text: bytes) -> None:
    check(text)


# --- what the scanner must see through, and what it must leave to the full decoding --------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        # a decoy key nested before the real one is not the event's name
        (b'{"args":[{"eventName":"x"}],"eventName":"execve","hostProcessId":5}', ("execve", "host", "", 5, None)),
        (b'{"kubernetes":{"eventName":"x","hostProcessId":9},"eventName":"openat"}', ("openat", "host", "", 0, None)),
        (b'{"eventName":"openat","x":"\\"eventName\\":\\"y\\""}', ("openat", "host", "", 0, None)),
        # the container and the origin, as origin_of finds them
        (
            b'{"eventName":"x","containerId":"a","container":{"id":""},"args":[{"name":"b","value":-3}]}',
            ("x", "container-init", "a", 0, {"b": -3}),
        ),
        (
            b'{"eventName":"x","container":{"name":"n","id":"c"},"contextFlags":{"containerStarted":true}}',
            ("x", "container", "c", 0, {}),
        ),
        # the last argument of a name wins, as in Event.args; a missing value is None
        (
            b'{"eventName":"x","args":[{"name":"a","value":"1"},{"name":"b"},{"name":"a","value":true}]}',
            ("x", "host", "", 0, {"a": True, "b": None}),
        ),
        (b' {"eventName":"x","eventId":"12"}\r\n', ("x", "host", "", 0, {})),
        # nested as deep as the reader accepts (the record itself is the first level)
        (
            b'{"eventName":"x","y":' + b"[" * (MAX_NESTING - 1) + b"]" * (MAX_NESTING - 1) + b"}",
            ("x", "host", "", 0, {}),
        ),
    ],
)
def test_answers(text: bytes, answer: tuple[Any, ...]) -> None:
    assert _typed(check(text)) == _typed(answer)


@pytest.mark.parametrize(
    "text",
    [
        b'{"eventName":"x","eventName":"execve"}',  # duplicates of a key read: orjson keeps the last
        b'{"eventName":"x","hostProcessId":1,"hostProcessId":2}',
        b'{"eventName":"x","container":{"id":"a","id":"b"}}',
        b'{"eventName":"x","contextFlags":{"containerStarted":false,"containerStarted":true}}',
        b'{"eventName":"execve","event\\u004eame":"x"}',  # an escaped key may spell a key read
        b'{"eventName":"x","container":{"\\u0069d":"a"}}',
        b'{"eventName":"x","args":[{"name":"a","\\u0076alue":"/etc/shadow"}]}',
        b'{"eventName":"x","args":[{"name":"a","value":"/x","value":"/etc/shadow"}]}',
        b'{"eventName":"x","args":[{"name":"p\\u0061th","value":"/etc/shadow"}]}',
        b'{"eventName":"x","args":[{"name":"a","value":"/etc/\\u0073hadow"}]}',  # an escape in a value read
        b'{"eventName":"ex\\u0065cve"}',
        b'{"eventName":"x","processName":"caf\xc3\xa9"}',  # non-ASCII
        b'{"eventName":"x","processName":"\\ud800"}',  # a lone surrogate: invalid
        b'{"eventName":"x","hostProcessId":null}',
        b'{"eventName":"x","hostProcessId":18446744073709551615}',
        b'{"eventName":"x","other":1e999}',
        b'{"eventName":"x","args":[{"name":"a","value":1.5}]}',
        b'{"eventName":"x","args":[{"name":"a","value":["/etc/shadow"]}]}',
        b'{"eventName":"x","args":["a"]}',
        b'{"eventName":"x"} {}',
        b'{"eventName":"x"',
        b'{"eventName":"x","y":' + b"[" * MAX_NESTING + b"]" * MAX_NESTING + b"}",
    ],
)
def test_not_sure(text: bytes) -> None:
    assert _scan(text) is None


def test_tracee_recordings_are_read_by_the_scanner() -> None:
    """Real Tracee output (v0.8 and v0.24.1 documentation events) is read by the fast path."""
    lines = tracee_recordings()
    answered = [check(line, {}) for line in lines if line.isascii()]
    assert len(answered) > 10 and all(answer is not None for answer in answered)


def test_bad_calls_raise() -> None:
    with pytest.raises(TypeError):
        _scan("{}", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _scan(b'{"eventName":"x"}', {"x": ["a"]})  # type: ignore[dict-item]
    scan_lines = recscan.scan_lines
    assert scan_lines is not None
    plan = ({}, {}, None, frozenset(), 0, 0, {}, {}, (), None, frozenset(), None, 0, None)
    assert scan_lines(b'{"eventName":"x"}\n{"eventName":"y"}\n[', 0, 0, 100, plan) == (
        [(b'{"eventName":"x"}', 1, ("x", "host", "", 0, None)), (b'{"eventName":"y"}', 2, ("y", "host", "", 0, None))],
        36,
        2,
        0,
    )
    with pytest.raises(TypeError):
        scan_lines(b"", 0, 0, 100, plan[:13])
    with pytest.raises(ValueError, match="bad plan"):  # lazy: a dict of the arguments each event reads in place
        scan_lines(b"", 0, 0, 100, (*plan[:7], frozenset(), *plan[8:]))
    lazy_plan = (*plan[:7], {"x": ("a",), "y": ()}, ("eventName",), *plan[9:12], 1, None)
    text = b'{"eventName":"x","args":[{"name":"a","value":"1"},{"name":"b","value":2}]}\n{"eventName":"y"}\n'
    assert [answer for _, _, answer in scan_lines(text, 0, 0, 100, lazy_plan)[0]] == [
        {"eventName": "x", "args": {"a": "1"}},
        {"eventName": "y"},
    ]
    with pytest.raises(ValueError, match="bad plan"):
        scan_lines(text, 0, 0, 100, (*plan[:7], {"x": ["a"]}, ("eventName",), *plan[9:]))
    with pytest.raises(TypeError, match="must be str"):
        scan_lines(text, 0, 0, 100, (*plan[:7], {"x": (1,)}, ("eventName",), *plan[9:]))
    with pytest.raises(ValueError, match="bad plan"):
        scan_lines(b"", 0, 0, 100, (*plan[:4], 2, 2, *plan[6:]))  # no shard 2 of 2
    with pytest.raises(ValueError, match="bad plan"):  # what a tree reads of other shards: without shards
        scan_lines(b"", 0, 0, 100, (*plan[:11], {}, 0, None))
    with pytest.raises(ValueError, match="bad plan"):
        scan_lines(b"", 0, 0, 100, (*plan[:4], 0, 2, *plan[6:11], {"x": ["a"]}, 0, None))
    with pytest.raises(TypeError, match="must be str"):
        scan_lines(b"", 0, 0, 100, (*plan[:4], 0, 2, *plan[6:11], {"x": (1,)}, 0, None))
    with pytest.raises(ValueError, match="bad plan"):
        scan_lines(b"", -1, 0, 100, plan)


def test_the_compiled_loop_applies_remembered_admission_answers() -> None:
    """A value the admission refused before is left out and counted; one it took is handed on
    marked admitted (args True), so the reader does not test it again; any other is read."""
    scan_lines = recscan.scan_lines
    assert scan_lines is not None

    def record(path: str, started: bool = False) -> bytes:
        flags = b',"contextFlags":{"containerStarted":true},"containerId":"c1"' if started else b""
        return b'{"eventName":"open"%s,"args":[{"name":"pathname","value":"%s"}]}' % (flags, path.encode())

    verdicts = {"open": {"host": ("pathname", {"/etc/passwd": True, "/tmp/x": False})}}
    plan = ({"open": ("pathname",)}, {}, None, frozenset(), 0, 0, verdicts, {}, (), None, frozenset(), None, 0, None)
    lines = [record("/etc/passwd"), record("/tmp/x"), record("/other"), record("/tmp/x", started=True)]
    records, _, _, skipped = scan_lines(b"\n".join(lines) + b"\n", 0, 0, 1000, plan)
    assert skipped == 1  # /tmp/x from the host
    assert [(line, answer) for _, line, answer in records] == [
        (1, ("open", "host", "", 0, True)),
        (3, ("open", "host", "", 0, {"pathname": "/other"})),
        (4, ("open", "container", "c1", 0, {"pathname": "/tmp/x"})),  # remembered for the host only
    ]


def test_the_compiled_loop_reads_what_a_shards_tree_needs_of_other_shards_records() -> None:
    """Under --workers, another shard's fork/exec/exit, and the record of a process this shard's tree
    does not know, come with what the tree reads of them, read in place (no second scan): [fields,
    args] for the one shown; the fields appended to the one learnt from; when a value read is not
    sure, the name (shown) or None (learnt from), and the reader reads the record itself."""
    scan_lines = recscan.scan_lines
    assert scan_lines is not None
    keys = ("eventName", "hostProcessId", "processName")

    def exec_record(pid: int, comm: bytes = b"sh") -> bytes:
        return (
            b'{"eventName":"sched_process_exec","hostProcessId":%d,"processName":"%s","args":'
            b'[{"name":"pathname","value":"/bin/sh"},{"name":"argv","value":["sh","-c"]},{"name":"env","value":[]}]}'
            % (pid, comm)
        )

    def open_record(pid: int, comm: bytes = b"cat") -> bytes:
        return b'{"eventName":"open","hostProcessId":%d,"processName":"%s","args":[]}' % (pid, comm)

    lines = [exec_record(1), exec_record(3, b"s\\u0068"), open_record(5), open_record(7, b"c\\u0061t"), open_record(2)]
    text = b"\n".join(lines) + b"\n"
    tree_args = {"sched_process_exec": ("argv", "pathname")}
    # shard 0 of 2, every event decoded by its host process (odd pids: shard 1's), a tree that knows nobody
    plan = ({}, {}, None, frozenset({"sched_process_exec"}), 0, 2, {}, {}, keys, {}, frozenset(), tree_args, 1, None)

    def answers_of(plan: tuple[Any, ...]) -> list[tuple[int, Any]]:
        """Every line's answer: the loop pauses after each (each changes the tree: learnt or shown)."""
        answers, pos, lineno = [], 0, 0
        while pos < len(text):
            records, pos, lineno, _ = scan_lines(text, pos, lineno, 1000, plan)
            assert len(records) == 1
            answers += [(line, answer) for _, line, answer in records]
        return answers

    assert answers_of(plan) == [
        (
            1,
            [
                {"eventName": "sched_process_exec", "hostProcessId": 1, "processName": "sh"},
                {"pathname": "/bin/sh", "argv": ["sh", "-c"]},
            ],
        ),
        (2, "sched_process_exec"),  # an escape in a value read: the reader reads it
        (3, ["open", "host", "", 5, None, {"eventName": "open", "hostProcessId": 5, "processName": "cat"}]),
        (4, ["open", "host", "", 7, None, None]),
        (5, ("open", "host", "", 2, None)),  # this shard's
    ]
    without = (*plan[:11], None, 1, None)  # the reader reads them (the Python loop's way)
    assert [answer for _, answer in answers_of(without)][:4] == [
        "sched_process_exec",
        "sched_process_exec",
        ["open", "host", "", 5, None],
        ["open", "host", "", 7, None],
    ]


def test_argument_names_no_record_can_hold_are_absent() -> None:
    """Argument names that are not ASCII (a record read is), even lone surrogates: absent, not an error."""
    text = b'{"eventName":"x","args":[{"name":"a","value":1},{"name":"caf","value":2}]}'
    assert _scan(text, {"x": ("caf\u00e9", "\ud800", "a")}) == ("x", "host", "", 0, {"a": 1})


# --- the reader, with the scanner and without ------------------------------------------------


def _workload(path: Path, count: int, seed: int) -> None:
    benchmarks = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        from workload import write_events
    finally:
        sys.path.remove(benchmarks)
    write_events(str(path), count, seed=seed)


HOSTILE_LINES = [
    b'{"args":[{"eventName":"security_file_open"}],"eventName":"openat","hostProcessId":3}',
    b'{"eventName":"security_file_open","args":[{"name":"pathname","value":"/etc/ld.so.preload"}]}',
    b'{"eventName":"security_file_open","args":[{"name":"pathname","value":"/etc/ld.so.\\u0070reload"}]}',
    b'{"eventName":"security_file_open","args":[{"name":"pathname","value":"/tmp","value":"/etc/ld.so.preload"}]}',
    b'{"eventName":"security_file_open","event\\u004eame":"sched_process_exec"}',
    b'{"eventName":"sched_process_exec","eventName":"openat"}',
    b'{"eventName":"openat","processId":"7"}',
    b'{"eventName":"openat","eventId":"\\u00b2"}',
    b'{"eventName":"openat","args":[{"name":"pathname","value":"\\ud800"}]}',
    b'{"eventName":"no_such_event"}',
    b'{"eventName":"openat","hostProcessId":null,"args":null}',
    b'{"eventName":"openat","n":' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"eventName":"openat","n":1e999}',
    b'{"eventName":"security_file_open"',
    # names of events decoded whole, which one process decodes without a scan
    b'{"n":{"eventName":"sched_process_exec"},"eventName":"openat","hostProcessId":4}',  # a decoy first
    b'{"eventName":"sched_process_exec","args":[' + b",".join([b"{}"] * 40) + b"]}",  # many brackets, shallow
    b'{"eventName":"sched_process_exec","timestamp":"1"}',
    b'{"eventName":"sched_process_exec","timestamp":null,"processName":"sh"}',
    b'{"eventName":"execve","args":[{"name":"pathname","value":"/bin/sh"},{"name":5,"value":1}]}',
    b'{"eventName":"execve","args":[{"name":"pathname","value":"/bin/sh"},7]}',
    b'{"eventName":"execve","hostProcessId":5',
    b'{"eventName":"execve","eventName":[1]}',  # the name decoded last is not a str (nor hashable)
    b'{"eventName":"sched_process_exec","n":' + b"[" * 40 + b"]" * 40 + b"}",
]


def _run(path: Path, monkeypatch: pytest.MonkeyPatch, compiled: bool, shard: tuple[int, int] | None = None) -> Any:
    with monkeypatch.context() as patch:
        if not compiled:
            patch.setattr(reader_module, "_compiled_scan", None)
        session = Session(SessionConfig(load_installed_plugins=False))
        session.load()
        reader = EventReader(
            [path],
            is_known_event=session.is_known_event,
            wanted_events=session.wanted_events,
            admissions=session.admissions,
            shard=shard,
            lazy_events=session.lazy_events,
            lazy_args=session.lazy_args,
        )
        delivered = list(reader)
        lazily = sum(type(event) is LazyEvent for event in delivered)
        assert lazily > 0 if compiled and session.lazy_events else lazily == 0
        events = [(event.location, event.raw) for event in delivered]  # a LazyEvent decodes here
        session.finish(session.run([]))
    return events, reader.stats.events, reader.stats.undecoded, dict(reader.stats.skipped_by_reason)


def test_the_reader_is_the_same_with_and_without_the_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "w.jsonl"
    _workload(path, 3000, seed=11)
    with path.open("ab") as out:
        out.write(b"\n".join(HOSTILE_LINES) + b"\n")
    runs = []
    for compiled in (True, False):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pytracee.input"):
            result = _run(path, monkeypatch, compiled)
        runs.append((result, [record.getMessage() for record in caplog.records]))
    assert runs[0] == runs[1]
    (events, read, undecoded, skipped), messages = runs[0]
    assert read + sum(skipped.values()) == 3000 + len(HOSTILE_LINES)
    assert 0 < undecoded < read and len(messages) == sum(skipped.values())
    delivered = Counter(raw["eventName"] for _, raw in events[-11:-5])
    assert delivered["security_file_open"] == 3  # the preload opens, however written
    by_line = {int(where.rsplit(":", 1)[1]) - 3000: raw for where, raw in events[-5:]}
    assert {line: raw["eventName"] for line, raw in by_line.items()} == {
        15: "openat",  # the decoy's record read by its own name
        16: "sched_process_exec",
        18: "sched_process_exec",  # 17's timestamp is a string: rejected
        19: "execve",  # 20's args are malformed: rejected when read (at dispatch)
        20: "execve",
    }
    assert "timestamp" not in by_line[18]  # a null field reads as absent, as without the scanner


def test_shards_keep_each_process_and_container_together_with_and_without_the_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.jsonl"
    _workload(path, 2000, seed=12)
    with path.open("ab") as out:
        out.write(b"\n".join(HOSTILE_LINES) + b"\n")
    whole = _run(path, monkeypatch, True)
    for compiled in (True, False):
        shards = [_run(path, monkeypatch, compiled, (index, 2)) for index in range(2)]
        assert sorted(e for shard in shards for e in shard[0]) == sorted(whole[0])  # each event once
        assert sum(shard[1] for shard in shards) == whole[1]
        # a process's key (a null hostProcessId cannot be read: such a record goes by its line)
        owners = [
            {container_id_of(raw) or raw.get("hostProcessId") for _, raw in shard[0]} - {None} for shard in shards
        ]
        assert all(owners) and not owners[0] & owners[1]


# --- the compiled line loop (RecordSplitter with scanning) against the Python one ------------


@functools.cache
def _default_plan() -> tuple[set[str], dict[str, Any]]:
    """The default signatures' wanted events and admissions (security_file_open's paths, ...)."""
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    plan = session.wanted_events, session.admissions
    session.finish(session.run([]))
    assert plan[0] is not None
    return plan[0], plan[1]


LINE_PIECES = [
    b'{"eventName":"openat","hostProcessId":1,"args":[{"name":"pathname","value":"/etc"}]}',
    b'{"eventName":"security_file_open","hostProcessId":2,"args":[{"name":"pathname","value":"/etc/ld.so.preload"}]}',
    b'{"eventName":"security_file_open","containerId":"c1","args":[{"name":"pathname","value":"/tmp/x"}]}',
    b'{"eventName":"read","hostProcessId":3}',
    b'{"eventName":"security_file_open","hostProcessId":2,"args":[{"name":"pathname","value":"/tmp/x"}]}',
    (
        b'{"eventName":"security_file_open","contextFlags":{"containerStarted":true},"containerId":"c1",'
        b'"args":[{"name":"pathname","value":"/tmp/x"}]}'
    ),
    b'{"eventName":"security_file_open","hostProcessId":2,"args":[{"name":"pathname","value":"/etc/shadow"}]}',
    b'{"eventName":"security_sb_mount","hostProcessId":2,"args":[{"name":"dev_name","value":"/dev/x"}]}',
    b'{"eventName":"sched_process_exec","hostProcessId":4,"args":[]}',
    b'{"eventName":"close","hostProcessId":4}\r',
    b'  {"eventName":"read","hostProcessId":5}',
    b"",
    b"   ",
    b'[{"eventName":"read"},',
    b' {"eventName":"openat","hostProcessId":6}]',
    b'[{"eventName":"close"}] {"eventName":"read"}',
    b'{"eventName":"read","x":"' + b"y" * 300 + b'"}',
    b'{"eventName":"caf\xc3\xa9"}',
    b'{"eventName":"no_such_event"}',
    b'{"eventName":"openat"',
    b"not json",
    b"]",
]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.sampled_from(LINE_PIECES), max_size=30),
    st.sampled_from([1, 2, 7, 64, 1 << 20]),
    st.sampled_from([0, 120, 400]),
    st.booleans(),
    st.sampled_from([None, (0, 2), (1, 2)]),
)
def test_the_compiled_line_loop_splits_as_the_python_one(
    pieces: list[bytes], chunk: int, limit: int, final_newline: bool, shard: tuple[int, int] | None
) -> None:
    data = b"\n".join(pieces) + (b"\n" if final_newline else b"")
    wanted, admissions = _default_plan()
    runs = []
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not compiled:
                patch.setattr(reader_module, "_compiled_scan_lines", None)
            handler = _Collect()
            logger = logging.getLogger("pytracee.input")
            patch.setattr(logger, "level", logging.WARNING)
            logger.addHandler(handler)
            try:
                reader = EventReader(
                    ["-"],
                    stdin=in_pieces(
                        [data[at : at + chunk] for at in range(0, len(data), chunk)]
                    ),  # chunks of that size
                    max_line_size=limit,
                    is_known_event=is_known_event,
                    wanted_events=wanted,
                    admissions=admissions,
                    shard=shard,
                )
                events = [(event.location, event.raw) for event in reader]
            finally:
                logger.removeHandler(handler)
        stats = reader.stats
        runs.append((events, stats.events, stats.undecoded, dict(stats.skipped_by_reason), handler.messages))
    assert runs[0] == runs[1]
    bad = sum(runs[0][3].values())
    assert len(runs[0][4]) == min(bad, 20) + (bad >= 20)  # the bad records were reported
