"""Findings on LSM events carry the syscall event behind them (``Data["syscall_event"]``), in replay."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import orjson
import pytest
from conftest import tracee_rules
from pytracee.engine.testing import make_event
from pytracee.signatures.syscall_context import HOLD_NS, MAX_HELD, MAX_THREADS, SyscallContext

# A rule firing on every LSM event of the cross-reference (and on nothing else).
LSM_RULE = """
from pytracee.engine import Event, select, signature

@signature(id="LSM-1", name="Any LSM event", severity=1, events=[
    select("security_file_open"), select("security_bprm_check"), select("security_socket_connect"),
    select("security_inode_rename"), select("security_sb_mount")])
def any_lsm(event: Event) -> dict:
    return {"lsm": event.name}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "any_lsm.py").write_text(LSM_RULE)
    return directory


def replay(rules_dir: Path, tmp_path: Path, events: list) -> list[dict]:
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"".join(orjson.dumps(e.raw) + b"\n" for e in events))
    result = tracee_rules(
        "--rules-dir", str(rules_dir), "--rules", "LSM-1", "--output-template", "rawjson", "--input", str(stream)
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def ev(name: str, args: dict, tid: int, **context) -> object:
    return make_event(name, args, hostProcessId=context.pop("pid", tid), hostThreadId=tid, **context)


OPENAT = {"dirfd": -100, "pathname": "../etc/shadow", "flags": 0, "mode": 0}
FILE_OPEN = {
    "pathname": "/etc/shadow",
    "flags": 0,
    "dev": 1,
    "inode": 2,
    "ctime": 3,
    "syscall_pathname": "../etc/shadow",
}


def test_each_lsm_event_carries_its_syscall_as_the_tracer_read_it(rules_dir: Path, tmp_path: Path) -> None:
    sockaddr = {"sa_family": "AF_INET", "sin_addr": "127.0.0.1", "sin_port": "80"}
    events = [
        ev("openat", OPENAT, 10, returnValue=3),
        ev("security_file_open", FILE_OPEN, 10, syscall="openat"),
        ev("connect", {"sockfd": 4, "addr": sockaddr, "addrlen": 16}, 11, returnValue=0),
        ev("security_socket_connect", {"sockfd": 4, "type": 1, "remote_addr": sockaddr}, 11, syscall="connect"),
        ev("renameat2", {"olddirfd": -100, "oldpath": "a", "newdirfd": -100, "newpath": "b", "flags": 0}, 12),
        ev("security_inode_rename", {"old_path": "/tmp/a", "new_path": "/tmp/b"}, 12, syscall="renameat2"),
        ev("mount", {"source": "/dev/sda1", "target": "mnt", "filesystemtype": "ext4", "mountflags": 0, "data": 0}, 13),
        ev(
            "security_sb_mount",
            {"dev_name": "/dev/sda1", "path": "/mnt", "type": "ext4", "flags": 0},
            13,
            syscall="mount",
        ),
        # exec: the thread id may change (an exec from another thread); paired by process
        ev("execve", {"pathname": "./run", "argv": ["./run"], "envp": []}, 15, pid=14),
        ev("security_bprm_check", {"pathname": "/opt/run", "dev": 1, "inode": 5}, 14, pid=14, syscall="execve"),
    ]
    findings = replay(rules_dir, tmp_path, events)
    by_lsm = {f["Data"]["lsm"]: f["Data"]["syscall_event"] for f in findings}
    assert set(by_lsm) == {
        "security_file_open",
        "security_socket_connect",
        "security_inode_rename",
        "security_sb_mount",
        "security_bprm_check",
    }
    opened = by_lsm["security_file_open"]
    assert opened["name"] == "openat" and opened["returnValue"] == 3 and opened["args"] == OPENAT
    assert by_lsm["security_socket_connect"]["args"]["addr"] == sockaddr
    assert by_lsm["security_inode_rename"]["args"]["oldpath"] == "a"
    assert by_lsm["security_sb_mount"]["args"]["target"] == "mnt"
    assert by_lsm["security_bprm_check"]["args"]["pathname"] == "./run"
    assert opened["timestamp"] == events[0].timestamp


def test_tracees_order_lsm_event_first_pairs_with_the_syscall_that_follows_never_the_one_before(
    rules_dir: Path, tmp_path: Path
) -> None:
    """Tracee sends the syscall at its exit, after the LSM event: the earlier call of the thread is not it."""
    context = SyscallContext()
    first_open = ev("openat", dict(OPENAT, pathname="/etc/a"), 20, returnValue=3)
    lsm_b = ev(
        "security_file_open", dict(FILE_OPEN, pathname="/etc/b", syscall_pathname="/etc/b"), 20, syscall="openat"
    )
    open_b = ev("openat", dict(OPENAT, pathname="/etc/b"), 20, returnValue=4)
    lsm_a = ev(
        "security_file_open", dict(FILE_OPEN, pathname="/etc/a", syscall_pathname="/etc/a"), 20, syscall="openat"
    )
    for event in (lsm_a, first_open, lsm_b, open_b):  # Tracee's order: LSM a, openat a, LSM b, openat b
        context.observe(event)
    # the first, before openat was seen traced, stays unpaired; its syscall is not taken for the next
    assert context.syscall_of(lsm_a) is None and context.syscall_of(lsm_b) is open_b
    # replayed: the first LSM event goes on at once (openat not seen traced yet), without the key;
    # once the stream shows openat traced, an LSM event waits for its syscall's event
    findings = replay(rules_dir, tmp_path, [lsm_a, first_open, lsm_b, open_b])
    assert findings[0]["Data"] == {"lsm": "security_file_open"}
    assert findings[1]["Data"]["syscall_event"]["args"]["pathname"] == "/etc/b"


def test_held_lsm_events_are_released_after_their_syscall_or_when_waiting_is_vain() -> None:
    released: list = []
    context = SyscallContext(released.append)
    context.observe(ev("openat", OPENAT, 50, returnValue=3))  # openat is traced
    lsm = ev("security_file_open", FILE_OPEN, 51, syscall="openat", timestamp=10**18)
    assert context.observe(lsm) is True and released == []
    syscall = ev("openat", OPENAT, 51, returnValue=3, timestamp=10**18 + 5)
    assert context.observe(syscall) is False and released == [lsm]  # dispatched right after its syscall
    assert context.syscall_of(lsm) is syscall
    # the syscall's event never comes: the thread's next syscall, 1 s of later events, or the end release it
    late = [
        ev("security_file_open", FILE_OPEN, tid, syscall="openat", timestamp=ts)
        for tid, ts in ((52, 2 * 10**18), (53, 2 * 10**18), (54, 2 * 10**18 + HOLD_NS))
    ]
    assert all(context.observe(e) for e in late)
    context.observe(ev("connect", {"sockfd": 1, "addr": {}, "addrlen": 0}, 52, timestamp=2 * 10**18 + 1))
    assert released[-1] is late[0]
    context.observe(ev("mount", {"source": "x"}, 99, timestamp=2 * 10**18 + HOLD_NS + 1))
    assert released[-1] is late[1] and late[2] not in released
    context.release_all()
    assert released[-1] is late[2] and context.syscall_of(late[2]) is None
    # at most MAX_HELD wait at once
    many = [
        ev("security_file_open", FILE_OPEN, 1000 + i, syscall="openat", timestamp=3 * 10**18)
        for i in range(MAX_HELD + 1)
    ]
    for event in many:
        context.observe(event)
    assert released[-1] is many[0]


def test_pairs_are_checked(rules_dir: Path, tmp_path: Path) -> None:
    sockaddr = {"sa_family": "AF_INET", "sin_addr": "127.0.0.1", "sin_port": "80"}
    events = [
        # another socket's connect: not this LSM event's call
        ev("connect", {"sockfd": 4, "addr": sockaddr, "addrlen": 16}, 30, returnValue=0),
        ev("security_socket_connect", {"sockfd": 5, "type": 1, "remote_addr": sockaddr}, 30, syscall="connect"),
        # a failed open (no LSM event) then an open whose syscall event was not traced
        ev("openat", OPENAT, 31, returnValue=-2),
        ev("security_file_open", FILE_OPEN, 31, syscall="openat"),
        # another thread's open
        ev("openat", OPENAT, 32, returnValue=3),
        ev("security_file_open", FILE_OPEN, 33, syscall="openat"),
    ]
    findings = replay(rules_dir, tmp_path, events)
    assert len(findings) == 3 and all("syscall_event" not in f["Data"] for f in findings)


def test_a_pair_lives_as_long_as_its_lsm_event_and_no_longer() -> None:
    """A pair is its LSM event's: an old LSM event that a signature still holds keeps its syscall
    event (no table of pairs pushes it out), and the context keeps nothing of the pairs made."""
    context = SyscallContext()
    first_syscall = ev("openat", OPENAT, 1, returnValue=3)
    first = ev("security_file_open", FILE_OPEN, 1, syscall="openat")
    context.observe(first_syscall)
    context.observe(first)
    tracemalloc.start()
    try:
        for n in range(20_000):
            tid = 2 + n % 500
            context.observe(ev("openat", OPENAT, tid, returnValue=3))
            context.observe(ev("security_file_open", FILE_OPEN, tid, syscall="openat"))
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert context.syscall_of(first) is first_syscall  # 20,000 pairs later
    assert kept < 256 << 10, kept  # none of those pairs (about 1 KiB each) stayed


def test_syscalls_whose_lsm_event_the_stream_lacks_stop_waiting_once_the_table_is_full() -> None:
    """A recording without security_bprm_check: execve events wait only while there is room; the
    first bprm_check makes them wait again, and the early ones still pair."""
    context = SyscallContext()
    execve = {"pathname": "/bin/true", "argv": ["true"]}
    first = ev("execve", execve, 1, returnValue=0)
    context.observe(first)
    for pid in range(2, MAX_THREADS + 500):
        context.observe(ev("execve", execve, pid, returnValue=0))
    assert len(context._syscalls) == MAX_THREADS and context._syscalls.forgotten == 0  # nothing pushed out
    lsm = ev("security_bprm_check", {"pathname": "/bin/true"}, 1, syscall="execve")
    context.observe(lsm)
    assert context.syscall_of(lsm) is first  # the young stream's execve waited and pairs
    context.observe(ev("execve", execve, 7000, returnValue=0))
    later = ev("security_bprm_check", {"pathname": "/bin/true"}, 7000, syscall="execve")
    context.observe(later)
    assert context.syscall_of(later) is not None  # the stream shows bprm_check now: execve waits again


def test_an_open_pairs_with_the_syscall_that_passed_its_path_not_an_earlier_one(
    rules_dir: Path, tmp_path: Path
) -> None:
    """Tracee's order, the thread's previous open's LSM event missing (filtered, or refused by the
    data filters of a replay): that open's syscall event waits in vain, and the next LSM event must
    not take it, but the openat that follows, which passed the path the LSM hook saw."""
    shadow = dict(FILE_OPEN, pathname="/etc/shadow", syscall_pathname="/etc/shadow")
    # the stream's order: openat seen traced, then an open surely paired with its LSM event first
    order = [ev("security_file_open", FILE_OPEN, 21, syscall="openat"), ev("openat", OPENAT, 21, returnValue=3)] * 2
    stale = ev("openat", dict(OPENAT, pathname="/usr/lib/libc.so.6"), 21, returnValue=3)
    lsm = ev("security_file_open", shadow, 21, syscall="openat")
    genuine = ev("openat", dict(OPENAT, pathname="/etc/shadow"), 21, returnValue=4)
    context = SyscallContext(release=lambda event: None)
    for event in (*order, stale, lsm, genuine):
        context.observe(event)
    assert context.syscall_of(lsm) is genuine
    findings = replay(rules_dir, tmp_path, [*order, stale, lsm, genuine])
    assert findings[-1]["Data"]["syscall_event"]["args"]["pathname"] == "/etc/shadow"
    # a syscall event that did not read the path pairs as before
    unread = ev("openat", dict(OPENAT, pathname=""), 22, returnValue=3)
    context.observe(unread)
    lsm_unread = ev("security_file_open", shadow, 22, syscall="openat")
    context.observe(lsm_unread)
    assert context.syscall_of(lsm_unread) is unread


def test_an_open_whose_path_was_swapped_pairs_with_its_own_syscall(rules_dir: Path, tmp_path: Path) -> None:
    """The collector's order (syscall first), a race on the path's buffer: the syscall event shows
    the path the tracer read, the LSM event another; they are still one call (PYT-2's finding
    shows both), not the LSM event and the next open's syscall event."""
    context = SyscallContext(release=lambda event: None)
    plain = ev("openat", OPENAT, 23, returnValue=3)
    for event in (plain, ev("security_file_open", FILE_OPEN, 23, syscall="openat")):
        context.observe(event)  # surely paired, the syscall first
    raced = ev("openat", dict(OPENAT, pathname="/tmp/aaaa"), 23, returnValue=3)
    swapped = ev("security_file_open", dict(FILE_OPEN, syscall_pathname="/tmp/bbbb"), 23, syscall="openat")
    following = ev("openat", dict(OPENAT, pathname="/tmp/bbbb"), 23, returnValue=3)
    for event in (raced, swapped, following):
        context.observe(event)
    assert context.syscall_of(swapped) is raced


def test_in_tracees_order_syscalls_stop_waiting_once_the_table_is_full() -> None:
    """Once the stream has paired opens only with the LSM event first (Tracee's order), an openat
    whose LSM event did not come before it will not see it after: with the table full, it is not
    held; a stream that pairs an LSM event after its syscall makes them wait again."""
    context = SyscallContext(release=lambda event: None)
    for event in (ev("security_file_open", FILE_OPEN, 1, syscall="openat"), ev("openat", OPENAT, 1, returnValue=3)):
        context.observe(event)  # the stream shows openat traced
    context.observe(ev("security_file_open", FILE_OPEN, 2, syscall="openat"))
    context.observe(ev("openat", OPENAT, 2, returnValue=3))  # paired, the LSM event first
    for tid in range(3, MAX_THREADS + 500):
        context.observe(ev("openat", OPENAT, tid, returnValue=3))  # their LSM events filtered out
    assert len(context._syscalls) == MAX_THREADS and context._syscalls.forgotten == 0  # the rest not held
    context = SyscallContext(release=lambda event: None)
    for tid in range(1, MAX_THREADS + 500):  # the collector's order: the syscall first
        context.observe(ev("openat", OPENAT, tid, returnValue=3))
        if tid < 3:
            context.observe(ev("security_file_open", FILE_OPEN, tid, syscall="openat"))
    assert context._syscalls.forgotten > 0  # still held: their LSM events may come after them


SHADOW_RULE = """
from pytracee.engine import select, signature

@signature(id="TEST-SHADOW", name="Shadow opened", events=[select("security_file_open", pathname="/etc/shadow")])
def shadow(event):
    return True
"""


def test_in_tracees_order_a_replay_leaves_undecoded_the_syscalls_that_can_pair_with_nothing(tmp_path: Path) -> None:
    """Tracee's order, the LSM events of most opens refused by the signatures' data filters: each
    openat comes after its LSM event, which was left out, so it can pair with nothing. Once the
    stream has shown that order, a replay counts such an openat as read and decodes it for nobody
    (the process is known: the tree learns nothing from it either); an open a signature takes
    still pairs with its own openat."""
    from pytracee.engine.reader import EventReader
    from pytracee.engine.session import Session, SessionConfig

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "shadow.py").write_text(SHADOW_RULE)
    shadow = dict(FILE_OPEN, pathname="/etc/shadow", syscall_pathname="/etc/shadow")
    shadow_openat = dict(OPENAT, pathname="/etc/shadow")
    events = []
    for rv in (0, 1):  # the first shows openat traced, the second pairs with its LSM event first
        events += [
            ev("security_file_open", shadow, 1, syscall="openat", pid=1),
            ev("openat", shadow_openat, 1, pid=1, returnValue=rv),
        ]
    for tid in range(100, 150):  # one process's threads open other files: refused by the filter
        other = dict(FILE_OPEN, pathname=f"/tmp/f{tid}", syscall_pathname=f"/tmp/f{tid}")
        events.append(ev("security_file_open", other, tid, syscall="openat", pid=1))
        events.append(ev("openat", dict(OPENAT, pathname=f"/tmp/f{tid}"), tid, pid=1, returnValue=3))
    events += [
        ev("security_file_open", shadow, 7, syscall="openat", pid=1),
        ev("openat", shadow_openat, 7, pid=1, returnValue=5),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e.raw) + b"\n" for e in events))

    session = Session(SessionConfig(rules_dirs=[rules], rules=["TEST-SHADOW"], load_installed_plugins=False))
    session.load()
    assert session.engine is not None and "openat" in session.lazy_idle
    findings: list = []
    session.engine.on_finding = findings.append
    reader = EventReader([path], **session.reader_plan())
    session.finish(session.run(reader))
    paired = [f.event.syscall_event.raw["returnValue"] if f.event.syscall_event else None for f in findings]
    assert paired == [None, 1, 5]  # each its own openat (the first: openat not shown traced yet)
    assert reader.stats.events == len(events) and reader.stats.skipped == 0
    assert reader.stats.undecoded == 100  # 50 LSM events refused, their 50 openat idle
    assert session.engine.stats.events == 6  # the three shadow opens, both halves


def test_a_reload_forgets_the_idle_tests_of_the_old_observers() -> None:
    """The reader holds the session's dict of idle tests: a reload empties it in place, so every
    lazy event is observed again (the tests were the old observers')."""
    from pytracee.engine.session import Session, SessionConfig

    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    plan = session.reader_plan()
    assert "openat" in plan["lazy_idle"]
    session.request_reload()
    session.finish(session.run([ev("openat", OPENAT, 1, returnValue=3)]))
    assert plan["lazy_idle"] == {}


def test_a_syscall_is_idle_only_when_the_stream_surely_pairs_it_after_its_lsm_event() -> None:
    """The collector's order (syscall first), an order not shown yet, an LSM event waiting on the
    thread, an event held: the syscall event is observed."""
    fields = {"eventName": "openat", "hostProcessId": 1, "hostThreadId": 9}
    context = SyscallContext(release=lambda event: None)
    assert not context.idle(fields)  # openat not seen traced yet
    context.observe(ev("openat", OPENAT, 1, returnValue=3))
    context.observe(ev("security_file_open", FILE_OPEN, 1, syscall="openat"))  # the syscall first
    assert not context.idle(fields)
    context = SyscallContext(release=lambda event: None)
    for _ in range(2):  # openat shown traced, then paired with the LSM event first
        context.observe(ev("security_file_open", FILE_OPEN, 1, syscall="openat"))
        context.observe(ev("openat", OPENAT, 1, returnValue=3))
    assert context.idle(fields)
    assert not context.idle({**fields, "eventName": "connect"})  # connect's order not shown
    context.observe(ev("security_file_open", FILE_OPEN, 9, syscall="openat"))  # waits on thread 9, held
    assert not context.idle(fields) and not context.idle({**fields, "hostThreadId": 10})
    context.observe(ev("openat", OPENAT, 9, returnValue=3))  # its own: paired, released
    assert context.idle(fields) and context.idle({**fields, "hostThreadId": 10})
    # a record without hostThreadId pairs under thread 0, whether observed or asked about
    unheld = SyscallContext()
    for _ in range(2):
        unheld.observe(ev("security_file_open", FILE_OPEN, 1, syscall="openat"))
        unheld.observe(ev("openat", OPENAT, 1, returnValue=3))
    threadless = ev("security_file_open", FILE_OPEN, 5, syscall="openat")
    del threadless.raw["hostThreadId"]
    unheld.observe(threadless)  # waits under thread 0 (not held: no release function)
    assert not unheld.idle({"eventName": "openat", "hostProcessId": 5})


def test_a_signature_choosing_the_key_keeps_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "own.py").write_text(LSM_RULE.replace('{"lsm": event.name}', '{"syscall_event": "mine"}'))
    findings = replay(
        rules,
        tmp_path,
        [ev("openat", OPENAT, 40, returnValue=3), ev("security_file_open", FILE_OPEN, 40, syscall="openat")],
    )
    assert findings[0]["Data"] == {"syscall_event": "mine"}


def test_engine_observers_see_events_before_the_signatures_and_select_nothing(caplog) -> None:
    from pytracee.engine.dispatch import Engine
    from pytracee.signatures.secure_tracing import ConnectArgumentTampering

    seen: list[str] = []
    engine = Engine([ConnectArgumentTampering()], lambda finding: seen.append("finding"))
    engine.observe(["openat", "security_socket_connect"], lambda event: seen.append(event.name))

    def broken(event) -> None:
        raise RuntimeError("observer bug")

    engine.observe(["openat"], broken)
    assert engine.selected_event_names() == ["connect", "security_socket_connect"]  # nothing added
    sockaddr = {"sa_family": "AF_INET", "sin_addr": "127.0.0.1", "sin_port": "1"}
    engine.dispatch(ev("connect", {"sockfd": 4, "addr": sockaddr, "addrlen": 16}, 1, returnValue=0))
    engine.dispatch(ev("openat", OPENAT, 1, returnValue=3))  # no signature selects it: observed all the same
    other = dict(sockaddr, sin_port="2")
    engine.dispatch(ev("security_socket_connect", {"sockfd": 4, "type": 1, "remote_addr": other}, 1, syscall="connect"))
    assert seen == ["openat", "security_socket_connect", "finding"]
    assert "observer bug" in caplog.text


def test_an_observer_failing_on_every_event_is_logged_a_few_times_and_counted(caplog) -> None:
    """Input can make an observer fail on every record: the first errors are logged, all are
    counted, and the summary says how many events lost their context."""
    from pytracee.engine.dispatch import ERRORS_LOGGED_PER_SIGNATURE, Engine

    engine = Engine([], lambda finding: None)

    def broken(event) -> None:
        raise RuntimeError("observer bug")

    engine.observe(["openat"], broken)
    for tid in range(40):
        engine.dispatch(ev("openat", OPENAT, tid, returnValue=3))
    logged = [r.getMessage() for r in caplog.records if "observer bug" in r.getMessage()]
    assert len(logged) == ERRORS_LOGGED_PER_SIGNATURE and "only counted" in logged[-1]
    assert dict(engine.stats.errors_by_observer) == {broken.__qualname__: 40}


def test_an_event_held_back_is_reported_done_only_once_the_signatures_had_it() -> None:
    """A source that acknowledges its input (a message bus) must not acknowledge an LSM event
    an observer holds: the engine says it did not go to the signatures, and reports it later."""
    from pytracee.engine import Event, select, signature
    from pytracee.engine.dispatch import Engine

    seen: list[str] = []

    @signature(id="SEEN-1", name="sees LSM events", severity=0, events=[select("security_file_open")])
    def sees(event: Event) -> None:
        seen.append(event.name)

    engine = Engine([sees() if isinstance(sees, type) else sees], lambda finding: None)
    context = SyscallContext(engine.release)
    engine.observe(["openat", "security_file_open"], context.observe, at_end=context.release_all)
    done: list[tuple[str, list[str]]] = []
    engine.on_released = lambda event: done.append((event.name, list(seen)))
    assert engine.dispatch(ev("openat", OPENAT, 60, returnValue=3)) is True  # openat is traced
    lsm = ev("security_file_open", FILE_OPEN, 61, syscall="openat", timestamp=10**18)
    assert engine.dispatch(lsm) is False and seen == [] and done == []  # held: not done
    assert engine.dispatch(ev("openat", OPENAT, 61, returnValue=3, timestamp=10**18 + 1)) is True
    assert done == [("security_file_open", ["security_file_open"])]  # done after the signature saw it
    held_at_end = ev("security_file_open", FILE_OPEN, 62, syscall="openat", timestamp=10**18 + 2)
    assert engine.dispatch(held_at_end) is False
    engine.complete()
    assert [name for name, _ in done] == ["security_file_open"] * 2 and len(seen) == 2


def test_each_input_file_teaches_its_own_order(tmp_path: Path) -> None:
    """Two recordings replayed in one run: Tracee's (the LSM event first), then one of pytracee's
    collector (the syscall first). The syscall context forgets the first file's order when the
    second begins, so no openat of the second is left out as one that could pair with nothing,
    and each open there pairs with its own openat (before, the first took the next call's)."""
    from pytracee.engine.reader import EventReader
    from pytracee.engine.session import Session, SessionConfig

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "shadow.py").write_text(SHADOW_RULE)
    shadow = dict(FILE_OPEN, pathname="/etc/shadow", syscall_pathname="/etc/shadow")
    shadow_openat = dict(OPENAT, pathname="/etc/shadow")

    def refused(tid: int, lsm_first: bool) -> list:
        other = dict(FILE_OPEN, pathname=f"/tmp/f{tid}", syscall_pathname=f"/tmp/f{tid}")
        pair = [
            ev("security_file_open", other, tid, syscall="openat", pid=1),
            ev("openat", dict(OPENAT, pathname=f"/tmp/f{tid}"), tid, pid=1, returnValue=3),
        ]
        return pair if lsm_first else pair[::-1]

    tracee_order = []
    for rv in (1, 2):  # LSM event first: openat shown traced, then the order learnt
        tracee_order += [
            ev("security_file_open", shadow, 7, syscall="openat", pid=1),
            ev("openat", shadow_openat, 7, pid=1, returnValue=rv),
        ]
    for tid in range(100, 110):
        tracee_order += refused(tid, lsm_first=True)
    syscall_first = []
    for rv in (11, 12):  # the same thread, the syscall first
        syscall_first += [
            ev("openat", shadow_openat, 7, pid=1, returnValue=rv),
            ev("security_file_open", shadow, 7, syscall="openat", pid=1),
        ]
    for tid in range(200, 210):
        syscall_first += refused(tid, lsm_first=False)
    first, second, again = tmp_path / "tracee.jsonl", tmp_path / "collector.jsonl", tmp_path / "tracee-2.jsonl"
    for path, events in ((first, tracee_order), (second, syscall_first), (again, tracee_order)):
        path.write_bytes(b"".join(orjson.dumps(e.raw) + b"\n" for e in events))

    def replay(*paths: Path) -> tuple[list, EventReader]:
        session = Session(SessionConfig(rules_dirs=[rules], rules=["TEST-SHADOW"], load_installed_plugins=False))
        session.load()
        assert session.engine is not None
        findings: list = []
        session.engine.on_finding = findings.append
        reader = EventReader(list(paths), **session.reader_plan())
        session.finish(session.run(reader))
        return [f.event.syscall_event.raw["returnValue"] if f.event.syscall_event else None for f in findings], reader

    paired, _ = replay(first, second)
    assert paired == [None, 2, 11, 12]  # the first: openat not shown traced yet
    paired, reader = replay(first, again)  # one recording in two files: the second file learns it again
    assert paired == [None, 2, 1, 2]
    # each file's first pair teaches the order before its refused opens: all 20 openat idle
    assert reader.stats.undecoded == 40  # with the 20 refused LSM events
    for workers in ("1", "2"):  # the command, in one process and on workers alike
        result = tracee_rules(
            *("--rules-dir", str(rules), "--rules", "TEST-SHADOW", "--output-template", "rawjson"),
            *("--workers", workers, "--input", str(first), "--input", str(second)),
        )
        assert result.returncode == 0, result.stderr
        findings = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(f["Data"] or {}).get("syscall_event", {}).get("returnValue") for f in findings] == [None, 2, 11, 12]
