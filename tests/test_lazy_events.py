"""Events read only in part: LazyEvent (observer-only events of a replay) and the process
tree fed from fields read in place (another shard's forks, execs and exits under --workers).

Both must be indistinguishable from the fully decoded event to whoever reads them: the
same accessors, the same ``raw`` once read, the same findings, the same process tree.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import tracee_rules
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytracee.engine import reader as reader_module
from pytracee.engine import recscan
from pytracee.engine.context.proctree import ARGS_READ, CONSUMED_EVENTS, FIELDS_READ, ProcessTree
from pytracee.engine.context.state import ContextSettings, EventContext
from pytracee.engine.events import LAZY_FIELDS, ArgumentError, Event, LazyEvent, MalformedEventError
from pytracee.engine.reader import EventReader
from pytracee.engine.session import Session, SessionConfig
from pytracee.engine.sharding import ObserveOthers
from record_strategies import TEXT, dump, events, in_pieces, mutated

pytestmark = [
    pytest.mark.usefixtures("quiet_logs"),
    pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built"),
]

OPENAT = {
    "timestamp": 1_700_000_000_000_000_100,
    "threadStartTime": 1_700_000_000_000_000_000,
    "processId": 42,
    "threadId": 43,
    "hostProcessId": 4242,
    "hostThreadId": 4243,
    "hostParentProcessId": 1,
    "processEntityId": 99,
    "userId": 0,
    "processName": "cat",
    "executable": {"path": "/usr/bin/cat"},
    "containerId": "",
    "container": {},
    "contextFlags": {"containerStarted": False, "isCompat": False},
    "eventId": "257",
    "eventName": "openat",
    "returnValue": 3,
    "syscall": "openat",
    "args": [
        {"name": "dirfd", "type": "int", "value": -100},
        {"name": "pathname", "type": "const char*", "value": "/etc/shadow"},
        {"name": "flags", "type": "int", "value": 0},
    ],
}


def _lazy(raw: dict[str, Any]) -> LazyEvent:
    text = orjson.dumps(raw)
    assert recscan.extract is not None
    read = recscan.extract(text, LAZY_FIELDS, ())
    assert read is not None
    return LazyEvent(read[0], text, "tracee", "f.jsonl", 7)


def test_a_lazy_event_reads_as_the_decoded_event_and_decodes_only_when_asked() -> None:
    lazy, whole = _lazy(OPENAT), Event(json.loads(json.dumps(OPENAT)), "tracee", "f.jsonl", 7)
    cheap = ("name", "timestamp", "host_process_id", "host_thread_id", "return_value", "syscall")
    for accessor in cheap:
        assert getattr(lazy, accessor) == getattr(whole, accessor), accessor
    assert (lazy.host_thread_id, whole.host_thread_id, whole.host_process_id) == (4243, 4243, 4242)
    assert lazy._decoded is None  # the cheap accessors read the fields found in place
    assert set(lazy.context_fields) <= set(LAZY_FIELDS)
    for accessor in ("process_name", "thread_id", "origin", "executable_path", "container_id", "location"):
        assert getattr(lazy, accessor) == getattr(whole, accessor), accessor
    assert lazy.raw == OPENAT and lazy.context_fields is lazy.raw
    assert lazy.args == whole.args and lazy.str_arg("pathname") == "/etc/shadow"
    assert lazy.to_dict() == whole.to_dict()


def test_a_lazy_event_reads_the_arguments_declared_in_place_and_decodes_for_the_others() -> None:
    text = orjson.dumps(OPENAT)
    assert recscan.extract is not None
    read = recscan.extract(text, LAZY_FIELDS, ("pathname", "no_such_arg"))
    assert read is not None
    lazy = LazyEvent({**read[0], "args": read[1]}, text, "tracee", "f.jsonl", 7, ("no_such_arg", "pathname"))
    assert lazy.str_arg("pathname") == "/etc/shadow" and lazy.arg("no_such_arg", 5) == 5
    with pytest.raises(ArgumentError, match="no argument 'no_such_arg'"):
        lazy.arg("no_such_arg")
    assert lazy._decoded is None  # all read in place
    assert lazy.int_arg("flags") == 0 and lazy._decoded is not None  # not declared: decoded
    assert lazy.str_arg("pathname") == "/etc/shadow" and lazy.args == Event(json.loads(text)).args


def test_the_syscall_context_declares_what_it_reads_and_a_replay_reads_it_in_place() -> None:
    session = _session()
    try:
        assert session.lazy_args["openat"] == ("pathname",)
        assert session.lazy_args["renameat2"] == ("newpath", "oldpath")
        assert set(session.lazy_args) <= session.lazy_events  # only the events only observers want
        assert session.engine is not None
        with pytest.raises(TypeError, match="by str"):
            session.engine.observe(["openat"], lambda event: None, args_read={"openat": [1]})  # type: ignore[list-item]
    finally:
        session.finish(session.run([]))


def test_a_lazy_event_whose_text_will_not_decode_is_malformed_not_a_crash() -> None:
    """Never expected (the scanner proved the record): reported as a malformed event if it happens."""
    broken = LazyEvent({"eventName": "openat"}, b'{"eventName":"openat"', "tracee", "f.jsonl", 3)
    assert broken.name == "openat"
    with pytest.raises(MalformedEventError, match="cannot be decoded"):
        broken.args  # noqa: B018


def _session(*rules: str) -> Session:
    session = Session(SessionConfig(load_installed_plugins=False, rules=list(rules)))
    session.load()
    return session


def test_the_events_only_observers_want_are_the_lazy_ones() -> None:
    session = _session()
    try:
        assert session.wanted_events is not None
        assert {"openat", "open", "renameat2"} <= session.lazy_events <= session.wanted_events
        assert not session.lazy_events & {"security_file_open", "execve", "connect", *CONSUMED_EVENTS}
        assert not session.lazy_events & set(session.admissions)
    finally:
        session.finish(session.run([]))
    session = _session("PYT-2")  # a signature selects openat: it is decoded as always
    try:
        assert "openat" not in session.lazy_events and "security_file_open" not in session.lazy_events
    finally:
        session.finish(session.run([]))


def _read(path: Path, session: Session, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    with monkeypatch.context() as patch:
        if not compiled:
            patch.setattr(reader_module, "_compiled_extract", None)
        reader = EventReader(
            [path],
            is_known_event=session.is_known_event,
            wanted_events=session.wanted_events,
            admissions=session.admissions,
            lazy_events=session.lazy_events,
            lazy_args=session.lazy_args,
        )
        return list(reader)


def test_the_reader_delivers_observer_only_events_lazily_and_odd_ones_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an escape in an argument nobody reads yet is fine; in a field or an argument read in place
    # (the syscall context reads openat's pathname), the record is decoded in full
    escaped = json.dumps(OPENAT).replace('"const char*"', '"const ch\\u0061r*"')
    odd = json.dumps(OPENAT).replace('"syscall": "openat"', '"syscall": "open\\u0061t"')
    odd_path = json.dumps(OPENAT).replace("/etc/shadow", "/etc/sh\\u0061dow")
    preload = dict(OPENAT, eventName="security_file_open", args=[{"name": "pathname", "value": "/etc/ld.so.preload"}])
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([json.dumps(OPENAT), escaped, odd, odd_path, json.dumps(preload)]) + "\n")
    session = _session()
    try:
        lazy = _read(path, session, True, monkeypatch)
        plain = _read(path, session, False, monkeypatch)
    finally:
        session.finish(session.run([]))
    assert [type(e) for e in lazy] == [LazyEvent, LazyEvent, Event, Event, Event]
    assert [type(e) for e in plain] == [Event] * 5
    assert lazy[1].str_arg("pathname") == "/etc/shadow" and lazy[2].syscall == "openat"
    assert lazy[3].str_arg("pathname") == "/etc/shadow"
    assert [(e.location, e.raw) for e in lazy] == [(e.location, e.raw) for e in plain]


def test_a_finding_carries_the_lazily_read_syscall_it_was_paired_with(tmp_path: Path) -> None:
    """TRC-107 on security_file_open: its syscall_event comes from the openat read lazily."""
    file_open = dict(
        OPENAT,
        eventName="security_file_open",
        eventId="732",
        timestamp=OPENAT["timestamp"] + 1,
        args=[
            {"name": "pathname", "type": "const char*", "value": "/etc/ld.so.preload"},
            {"name": "flags", "type": "int", "value": 1},
        ],
    )
    openat = dict(OPENAT, args=[*OPENAT["args"][:1], {"name": "pathname", "value": "/etc/ld.so.preload"}])
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(openat) + "\n" + json.dumps(file_open) + "\n")
    result = tracee_rules("--input", str(path), "--rules", "TRC-107", "--output-template", "rawjson")
    assert result.returncode == 0, result.stderr
    (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert finding["Data"]["syscall_event"] == {
        "name": "openat",
        "returnValue": 3,
        "timestamp": OPENAT["timestamp"],
        "args": {"dirfd": -100, "pathname": "/etc/ld.so.preload"},
    }


# --- the process tree from fields read in place ---------------------------------------------


def _tree_stream(seed: int, count: int = 600) -> list[dict[str, Any]]:
    """Forks (processes and threads), execs, exits and other events of a few dozen processes,
    pids reused, some in containers, some without entity ids or start times."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible stream, not a secret
    events: list[dict[str, Any]] = []
    alive = [1]
    names = ["bash", "sh", "nginx", "php-fpm", "python3", "curl"]
    clock = 1_700_000_000_000_000_000
    for _ in range(count):
        clock += rng.randrange(1, 10_000)
        pid = rng.choice(alive)
        container = rng.choice(["", "", "c0ffee" * 10 + "abcd"])
        context: dict[str, Any] = {
            "timestamp": clock,
            "threadStartTime": clock - 5000 if rng.random() < 0.8 else 0,
            "processId": pid % 1000,
            "hostProcessId": pid,
            "hostThreadId": pid if rng.random() < 0.9 else pid + 1,
            "hostParentProcessId": rng.choice([1, *alive]),
            "userId": rng.choice([0, 33, 1000]),
            "processName": rng.choice(names),
            "executable": {"path": "/usr/bin/" + rng.choice(names)},
            "container": {"id": container} if container else {},
            "containerId": container,
            "contextFlags": {"containerStarted": bool(container)},
        }
        if rng.random() < 0.7:
            context["processEntityId"] = pid * 7 + 1
            context["parentEntityId"] = context["hostParentProcessId"] * 7 + 1
        kind = rng.random()
        if kind < 0.25:
            child = rng.randrange(2, 400)
            thread = rng.random() < 0.2
            args = [
                {"name": "parent_tid", "value": pid},
                {"name": "parent_pid", "value": pid},
                {"name": "parent_process_pid", "value": pid},
                {"name": "child_tid", "value": child + 1 if thread else child},
                {"name": "child_pid", "value": child},
                {"name": "child_ns_pid", "value": child % 1000},
                {"name": "start_time", "value": clock + 1},
                {"name": "parent_start_time", "value": context["threadStartTime"]},
            ]
            events.append({**context, "eventName": "sched_process_fork", "args": args})
            if not thread and child not in alive:
                alive.append(child)
        elif kind < 0.5:
            path = "/usr/bin/" + rng.choice(names)
            args = [
                {"name": "cmdpath", "value": path},
                {"name": "pathname", "value": path},
                {"name": "argv", "value": [path, "-c", "x" * rng.randrange(0, 50)]},
                {"name": "inode", "value": rng.randrange(1, 1 << 40)},
            ]
            events.append({**context, "eventName": "sched_process_exec", "args": args})
        elif kind < 0.65:
            args = [{"name": "exit_code", "value": 0}, {"name": "process_group_exit", "value": rng.random() < 0.7}]
            events.append({**context, "eventName": "sched_process_exit", "args": args})
            if args[1]["value"] and pid != 1:
                alive.remove(pid)
        else:
            events.append({**context, "eventName": "openat", "args": [{"name": "pathname", "value": "/etc/hosts"}]})
    return events


def _snapshot(tree: ProcessTree) -> list[tuple[Any, ...]]:
    return [
        (
            node.pid,
            node.start_time,
            node.entity_id,
            node.comm,
            node.executable,
            node.argv,
            node.exec_time,
            node.exit_time,
            node.ns_pid,
            node.uid,
            node.container_id,
            node.parent.pid if node.parent is not None else None,
        )
        for node in tree
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tree_reads_only_the_fields_and_arguments_it_declares(seed: int) -> None:
    """Fed only FIELDS_READ and ARGS_READ, read in place by the scanner, the tree is the one
    the decoded events build (the path --workers takes for other shards' forks, execs, exits)."""
    assert recscan.extract is not None
    whole, in_place = EventContext(ContextSettings(max_processes=64)), EventContext(ContextSettings(max_processes=64))
    read_in_place = 0
    for raw in _tree_stream(seed):
        text = orjson.dumps(raw)
        whole.observe(Event(orjson.loads(text), "tracee", "t", 1, text))
        name = raw["eventName"]
        read = recscan.extract(text, FIELDS_READ, ARGS_READ.get(name, ()))
        assert read is not None
        in_place.observe_fields(*read)
        read_in_place += 1
    assert whole.tree is not None and in_place.tree is not None
    assert _snapshot(in_place.tree) == _snapshot(whole.tree)
    assert len(whole.tree) > 20 and read_in_place == 600


def test_other_shards_tree_events_are_read_in_place_and_odd_ones_decoded(tmp_path: Path) -> None:
    events = [e for e in _tree_stream(5, 300) if e["eventName"] in CONSUMED_EVENTS]
    lines = [json.dumps(e) for e in events]
    odd = json.dumps(dict(events[0], processName="caf\\u00e9")).replace("\\\\u00e9", "\\u00e9")
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([*lines, odd]) + "\n")
    shown: list[tuple[str, Any]] = []
    for index in (0, 1):
        reader = EventReader(
            [path],
            wanted_events=set(CONSUMED_EVENTS),
            shard=(index, 2),
            observe_others=ObserveOthers(
                CONSUMED_EVENTS,
                lambda event: shown.append(("decoded", event.raw)),
                lambda fields, args: shown.append(("in place", fields)),
                FIELDS_READ,
                ARGS_READ,
            ),
        )
        owned = list(reader)
        assert 0 < len(owned) < len(events) + 1
    assert len(shown) == len(events) + 1  # every record was shown to the shard that does not own it
    decoded = [raw for how, raw in shown if how == "decoded"]
    assert [raw["processName"] for raw in decoded] == ["café"]


def test_a_shards_tree_learns_again_a_process_replaced_while_its_records_were_scanned() -> None:
    """Under --workers, the compiled loop asks a shard's tree, while it scans a chunk, whether it
    knows the process of each of another shard's records (it learns only from those it does not).
    Here process 11's exec comes in a first chunk; in the second, an exec of this shard's names 11
    as its parent with another entity id (the tree puts a new process 11 in place), then 11's own
    event: one process's tree learns the first process 11 again from it, and so must the shard's,
    whose tree knew process 11 when the chunk was scanned."""
    context = {"processName": "sh", "executable": {"path": "/bin/sh"}, "padding": "x" * 2000}
    first = {
        **context,
        "eventName": "sched_process_exec",
        "hostProcessId": 11,
        "hostThreadId": 11,
        "processEntityId": 1001,
        "hostParentProcessId": 1,
        "args": [],
    }
    child = {
        "eventName": "sched_process_exec",
        "hostProcessId": 12,
        "hostThreadId": 12,
        "processName": "ls",
        "processEntityId": 1002,
        "hostParentProcessId": 11,
        "parentEntityId": 2002,
        "args": [],
    }
    again = {
        "eventName": "openat",
        "hostProcessId": 11,
        "hostThreadId": 11,
        "processName": "sh",
        "processEntityId": 1001,
        "args": [{"name": "pathname", "value": "/etc/hosts"}],
    }
    pieces = [orjson.dumps(first) + b"\n", orjson.dumps(child) + b"\n" + orjson.dumps(again) + b"\n"]
    trees = []
    for shard in (None, (0, 2)):
        tree_context = EventContext(ContextSettings())
        reader = _planned_reader(["-"], tree_context, shard, stdin=in_pieces(pieces))
        for event in reader:
            tree_context.observe(event)
        trees.append(_snapshot(tree_context.tree))
    # the first process 11, the one its child named as its parent, the child, the first learnt again
    expected = [(1, 0, ""), (11, 1001, "sh"), (11, 2002, ""), (12, 1002, "ls"), (11, 1001, "sh")]
    assert [(row[0], row[2], row[3]) for row in trees[0]] == expected
    assert trees[1] == trees[0]


# --- hostile streams through every path at once ----------------------------------------------

TREE_NAMES = st.sampled_from(
    ["openat", "sched_process_exec", "sched_process_fork", "sched_process_exit", "security_file_open", "read", "x"]
)


@st.composite
def _stream_record(draw: Any) -> bytes:
    """A record for the lazy and sharded paths: often one the tree or an observer reads, with few
    processes and executable objects of any shape; sometimes mutated as an attacker would."""
    if draw(st.integers(0, 3)) == 0:
        return bytes(draw(mutated()))
    raw = draw(events(odd=draw(st.booleans())))
    if isinstance(raw, dict) and draw(st.integers(0, 3)):
        raw["eventName"] = draw(TREE_NAMES)
        raw["hostProcessId"] = draw(st.integers(1, 6))
        if draw(st.booleans()):
            raw["executable"] = draw(st.dictionaries(st.sampled_from(["path", "p\u0061th", "x"]), TEXT, max_size=3))
    text = dump(draw, raw)
    if draw(st.integers(0, 4)) == 0:  # an escaped key or value where the scanner reads one
        text = text.replace(b'"path"', b'"p\\u0061th"', 1).replace(b'"openat"', b'"open\\u0061t"', 1)
    return text.replace(b"\n", b" ")


_PLAN: dict[str, Any] = {}


def _plan() -> dict[str, Any]:
    """The default signatures' decoding plan, made once."""
    if not _PLAN:
        session = _session()
        _PLAN.update(
            known=session.is_known_event,
            wanted=session.wanted_events,
            admissions=session.admissions,
            lazy=session.lazy_events,
            lazy_args=session.lazy_args,
        )
        session.finish(session.run([]))
    return _PLAN


def _planned_reader(
    inputs: list[Any], context: EventContext, shard: tuple[int, int] | None, **options: Any
) -> EventReader:
    """A reader with the default signatures' plan; sharded, it shows other shards' records to ``context``."""
    plan = _plan()
    assert context.tree is not None
    others = ObserveOthers(
        CONSUMED_EVENTS, context.observe, context.observe_fields, FIELDS_READ, ARGS_READ, context.tree.by_pid
    )
    return EventReader(
        inputs,
        is_known_event=plan["known"],
        wanted_events=plan["wanted"],
        admissions=plan["admissions"],
        lazy_events=plan["lazy"],
        lazy_args=plan["lazy_args"],
        shard=shard,
        observe_others=others,
        **options,
    )


def _replay(path: Path, compiled: bool, shard: tuple[int, int] | None) -> tuple[list[Any], int, int, Any]:
    plan = _plan()
    context = EventContext(ContextSettings())
    saved = reader_module._compiled_scan, reader_module._compiled_extract
    if not compiled:
        reader_module._compiled_scan = reader_module._compiled_extract = None
    try:
        reader = _planned_reader([path], context, shard)
        delivered = []
        for event in reader:
            context.observe(event)
            if type(event) is LazyEvent:  # the arguments read in place are those the decoding reads
                names = plan["lazy_args"].get(event.name, ())
                assert [event.arg(name, None) for name in names] == [Event(event.raw).arg(name, None) for name in names]
            delivered.append((event.location, event.raw))
    finally:
        reader_module._compiled_scan, reader_module._compiled_extract = saved
    skipped = sum(reader.stats.skipped_by_reason.values())
    return delivered, reader.stats.events, skipped, _snapshot(context.tree)


@given(st.lists(_stream_record(), min_size=1, max_size=12))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# an event nobody wants, but odd (decoded whole all the same): another shard's tree learns its process
@example(records=[b'{"eventName":"magic_write"}', b'{"eventName":"read","container":null,"hostProcessId":1}'])
@example(records=[b'{"eventName":"magic_write"}', b'{"eventName":"read","contextFlags":null,"hostProcessId":1}'])
# a nested "eventName" of a wanted event first: the admission of the real one decides, in every reader
@example(
    records=[
        b'{"x":{"eventName":"openat"},"eventName":"security_file_open","hostProcessId":5,"args":[{"name":"pathname",'
        + b'"type":"const char*","value":"%s"},{"name":"flags","type":"int","value":0}]}' % path
        for path in (b"/tmp/nothing", b"/etc/ld.so.preload")
    ]
)
def test_hostile_streams_read_lazily_and_sharded_are_the_plain_readers(
    tmp_path_factory: Any, records: list[bytes]
) -> None:
    """Whatever the records, the compiled reader, lazy events and shards with their trees
    learning from one another never fail, and deliver and count what the plain reader does; each
    shard's process tree is the one process's."""
    path = tmp_path_factory.mktemp("stream") / "s.jsonl"
    path.write_bytes(b"\n".join(records) + b"\n")
    plain, read, skipped, tree = _replay(path, False, None)
    whole = _replay(path, True, None)
    assert whole == (plain, read, skipped, tree)
    shards = [_replay(path, True, (index, 2)) for index in (0, 1)]
    assert sorted(event for part in shards for event in part[0]) == sorted(plain)
    assert sum(part[1] for part in shards) == read and sum(part[2] for part in shards) == skipped
    assert [part[3] for part in shards] == [tree, tree]
