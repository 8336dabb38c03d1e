"""Secure tracing, replay cases: PYT-1 (execve), PYT-2 (open) and PYT-3 (connect) compare what the tracer
read with what the kernel did."""

from __future__ import annotations

from pytracee.engine.testing import assert_fires, assert_silent, make_event, run_engine
from pytracee.signatures.secure_tracing import (
    MAX_PENDING,
    ConnectArgumentTampering,
    ExecArgumentTampering,
    OpenArgumentTampering,
)


def exec_pair(claimed: str, kernel: str, *, pid: int = 700, syscall: str = "execve", ret: int = 0):
    syscall_event = make_event(syscall, {"pathname": claimed, "argv": [claimed]}, hostProcessId=pid, returnValue=ret)
    kernel_event = make_event(
        "sched_process_exec",
        {"cmdpath": kernel, "pathname": "/usr/bin/" + kernel.rsplit("/", 1)[-1]},
        hostProcessId=pid,
        syscall=syscall,
    )
    return syscall_event, kernel_event


def test_tampered_path_is_reported_on_the_kernel_event_with_the_syscall() -> None:
    syscall_event, kernel_event = exec_pair("/bin/true", "/bin/nc")
    for order in ([kernel_event, syscall_event], [syscall_event, kernel_event]):  # either arrival order
        finding = assert_fires(ExecArgumentTampering, order, count=1)
        assert finding.event is kernel_event and finding.event.syscall == "execve"
        assert finding.data == {
            "syscall": "execve",
            "syscall pathname": "/bin/true",
            "kernel pathname": "/bin/nc",
            "executed file": "/usr/bin/nc",
        }


def test_honest_execs_are_quiet() -> None:
    events = [*exec_pair("/bin/ls", "/bin/ls", pid=1), *exec_pair("./run.sh", "./run.sh", pid=2)]
    events += exec_pair("/bin/sh", "/bin/sh", pid=3)  # a symlink resolves in "pathname", not in "cmdpath"
    assert_silent(ExecArgumentTampering, events)


def test_pairs_are_per_process_and_failed_execs_are_ignored() -> None:
    a_sys, a_kernel = exec_pair("/bin/true", "/bin/true", pid=10)
    b_sys, b_kernel = exec_pair("/bin/false", "/bin/false", pid=11)
    assert_silent(ExecArgumentTampering, [a_kernel, b_kernel, b_sys, a_sys])
    failed, _ = exec_pair("/bin/nope", "/bin/x", pid=12, ret=-2)
    _, later_kernel = exec_pair("/bin/ls", "/bin/ls", pid=12)
    later_sys, _ = exec_pair("/bin/ls", "/bin/ls", pid=12)
    assert_silent(ExecArgumentTampering, [failed, later_kernel, later_sys])


def test_an_argument_the_tracer_could_not_read_is_not_tampering() -> None:
    assert_silent(ExecArgumentTampering, exec_pair("", "/bin/sh"))


def test_execveat_relative_to_a_dirfd_is_not_compared() -> None:
    assert_silent(ExecArgumentTampering, exec_pair("", "/dev/fd/3", syscall="execveat"))
    assert_fires(ExecArgumentTampering, exec_pair("/bin/true", "/tmp/evil", syscall="execveat"))


def test_runs_with_the_builtins_by_default() -> None:
    assert [f.sig_metadata.id for f in run_engine(exec_pair("/bin/true", "/bin/nc"))] == ["PYT-1"]


def test_unpaired_exec_events_are_held_in_bounded_memory_and_a_later_attack_still_fires(caplog) -> None:
    from pytracee.engine.dispatch import Engine
    from pytracee.signatures.secure_tracing import MAX_PENDING_BYTES

    signature = ExecArgumentTampering()
    findings: list = []
    engine = Engine([signature], findings.append)
    environment = ["X=" + "e" * 60_000]  # 60 KB of environment per exec, never paired
    for pid in range(8_400):
        engine.dispatch(
            make_event("sched_process_exec", {"cmdpath": "/bin/a", "env": environment}, hostProcessId=100_000 + pid)
        )
    held = signature._kernel_view
    assert held.size <= MAX_PENDING_BYTES and 0 < len(held) < 8_400
    engine.dispatch(exec_pair("/bin/true", "/bin/nc")[0])
    engine.dispatch(exec_pair("/bin/true", "/bin/nc")[1])
    assert [f.data["kernel pathname"] for f in findings] == ["/bin/nc"]
    engine.complete()  # the forgotten events are reported at the end of the input
    (warning,) = [r.getMessage() for r in caplog.records if "forgotten" in r.getMessage()]
    forgotten = int(warning.split()[1])
    assert warning.startswith("PYT-1: ") and 8_400 - MAX_PENDING <= forgotten < 8_400, warning


def test_kernel_events_whose_syscall_the_stream_lacks_stop_waiting_after_a_few(caplog) -> None:
    """A recording without connect: security_socket_connect events wait only while few wait
    (nothing is pushed out, few decoded events are kept alive); once connect shows up, pairs are
    checked again."""
    from pytracee.engine.dispatch import Engine
    from pytracee.signatures.secure_tracing import MAX_HELD_UNSEEN

    signature = ConnectArgumentTampering()
    findings: list = []
    engine = Engine([signature], findings.append)
    peer = {"sa_family": "AF_INET", "sin_addr": "10.0.0.1", "sin_port": "443"}
    for tid in range(MAX_HELD_UNSEEN + 300):
        engine.dispatch(connect_pair(peer, peer, tid=10_000 + tid)[1])
    assert len(signature._kernel_view) == MAX_HELD_UNSEEN and signature._kernel_view.forgotten == 0
    claimed = {"sa_family": "AF_INET", "sin_addr": "127.0.0.1", "sin_port": "443"}
    for event in connect_pair(claimed, peer, tid=77):
        engine.dispatch(event)
    assert [f.data["kernel address"]["ip"] for f in findings] == ["10.0.0.1"]
    engine.complete()
    (warning,) = [r.getMessage() for r in caplog.records if "forgotten" in r.getMessage()]
    assert warning.startswith("PYT-3: 300 ") and "0 pushed out" in warning and "300 not held" in warning, warning


# --- PYT-2: open ------------------------------------------------------------------------


def open_pair(claimed: str, at_exit: str, opened: str, *, tid: int = 800, syscall: str = "openat", ret: int = 3):
    """The tracer's openat event (its read at entry) and the kernel's security_file_open."""
    args = {"dirfd": -100, "pathname": claimed, "flags": 0, "mode": 0}
    syscall_event = make_event(syscall, args, hostProcessId=tid, hostThreadId=tid, returnValue=ret)
    kernel_event = make_event(
        "security_file_open",
        {"pathname": opened, "flags": 0, "dev": 8, "inode": 1234, "ctime": 1, "syscall_pathname": at_exit},
        hostProcessId=tid,
        hostThreadId=tid,
        syscall=syscall,
    )
    return syscall_event, kernel_event


def test_open_path_swapped_while_the_kernel_opened_another_file_is_reported() -> None:
    syscall_event, kernel_event = open_pair("/tmp/r/aaaa", "/tmp/r/bbbb", "/tmp/r/bbbb")
    for order in ([syscall_event, kernel_event], [kernel_event, syscall_event]):
        finding = assert_fires(OpenArgumentTampering, order, count=1)
        assert finding.event is kernel_event
        assert finding.data == {
            "syscall": "openat",
            "syscall pathname": "/tmp/r/aaaa",
            "pathname at syscall exit": "/tmp/r/bbbb",
            "kernel pathname": "/tmp/r/bbbb",
            "dev": 8,
            "inode": 1234,
        }
    # a torn read (half of each path) is no name the kernel opened either
    assert_fires(OpenArgumentTampering, open_pair("/tmp/r/abbb", "/tmp/r/aaaa", "/tmp/r/bbbb"))


def test_honest_opens_whose_kernel_path_differs_are_quiet() -> None:
    honest = [
        ("notes.txt", "/home/u/notes.txt"),  # relative to the cwd
        ("../etc/passwd", "/etc/passwd"),  # ".."
        ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),  # a symlinked directory
        ("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),  # a symlink as the last component
        ("/proc/self/fd/3", "/tmp/the-file"),  # a magic link
        ("/dev/stdin", "/dev/pts/0"),
        ("/tmp/old-name", "/tmp/new-name"),  # renamed while it was opened
        (".", "/home/u"),
        ("/tmp/dir/", "/tmp/dir"),
    ]
    events = []
    for tid, (claimed, opened) in enumerate(honest, start=1):
        events += open_pair(claimed, claimed, opened, tid=tid)  # the tracer read the same path twice
    assert_silent(OpenArgumentTampering, events)


def test_a_changed_buffer_alone_is_not_reported_when_the_kernel_opened_what_the_tracer_read() -> None:
    assert_silent(OpenArgumentTampering, open_pair("/tmp/r/aaaa", "/tmp/r/bbbb", "/tmp/r/aaaa"))
    assert_silent(OpenArgumentTampering, open_pair("/tmp/r/..", "/tmp/r/bbbb", "/tmp"))  # no name to compare
    assert_silent(OpenArgumentTampering, open_pair("", "/tmp/r/bbbb", "/tmp/r/bbbb"))  # the tracer read nothing
    # a failed open raises no security_file_open: a later one of the thread pairs with its own call
    failed, _ = open_pair("/tmp/r/aaaa", "", "", ret=-2)
    assert_silent(OpenArgumentTampering, [failed, *open_pair("/tmp/r/cccc", "/tmp/r/cccc", "/tmp/r/cccc")])


def test_open_pairs_are_per_thread() -> None:
    a_sys, a_kernel = open_pair("/tmp/r/aaaa", "/tmp/r/aaaa", "/tmp/r/aaaa", tid=1)
    b_sys, b_kernel = open_pair("/tmp/r/bbbb", "/tmp/r/bbbb", "/tmp/r/bbbb", tid=2)
    assert_silent(OpenArgumentTampering, [a_sys, b_sys, b_kernel, a_kernel])


def test_pyt2_is_off_by_default() -> None:
    assert "PYT-2" not in [f.sig_metadata.id for f in run_engine(open_pair("/a/xx", "/a/yy", "/a/yy"))]


# --- PYT-3: connect ---------------------------------------------------------------------


def inet(ip: str, port: int) -> dict:
    family = "AF_INET6" if ":" in ip else "AF_INET"
    if family == "AF_INET6":
        return {"sa_family": family, "sin6_addr": ip, "sin6_port": str(port), "sin6_flowinfo": "0", "sin6_scopeid": "0"}
    return {"sa_family": family, "sin_addr": ip, "sin_port": str(port)}


def connect_pair(claimed: dict, peer: dict, *, tid: int = 900, ret: int = 0, fd: int = 5, kernel_fd: int = 5):
    syscall_event = make_event(
        "connect", {"sockfd": fd, "addr": claimed, "addrlen": 16}, hostProcessId=tid, hostThreadId=tid, returnValue=ret
    )
    kernel_event = make_event(
        "security_socket_connect",
        {"sockfd": kernel_fd, "type": 2, "remote_addr": peer},
        hostProcessId=tid,
        hostThreadId=tid,
        syscall="connect",
    )
    return syscall_event, kernel_event


def test_connect_to_another_peer_than_the_tracer_read_is_reported() -> None:
    syscall_event, kernel_event = connect_pair(inet("127.0.0.1", 40001), inet("127.0.0.1", 40002))
    for order in ([syscall_event, kernel_event], [kernel_event, syscall_event]):
        finding = assert_fires(ConnectArgumentTampering, order, count=1)
        assert finding.event is kernel_event
        assert finding.data == {
            "syscall": "connect",
            "syscall address": {"family": "AF_INET", "ip": "127.0.0.1", "port": "40001"},
            "kernel address": {"family": "AF_INET", "ip": "127.0.0.1", "port": "40002"},
        }
    assert_fires(ConnectArgumentTampering, connect_pair(inet("::1", 80), inet("::1", 8080), ret=-115))  # EINPROGRESS
    abstract = {"sa_family": "AF_UNIX", "sun_path": "@evil"}
    assert_fires(ConnectArgumentTampering, connect_pair({"sa_family": "AF_UNIX", "sun_path": "@good"}, abstract))


def test_honest_connects_are_quiet() -> None:
    events = [
        *connect_pair(inet("127.0.0.1", 80), inet("127.0.0.1", 80), tid=1),
        *connect_pair(inet("0.0.0.0", 80), inet("127.0.0.1", 80), tid=2),  # noqa: S104 - "any": the kernel picks the loopback
        *connect_pair(inet("::", 80), inet("::1", 80), tid=3),
        # a UNIX path: the peer's name is the one its server bound (relative, or through a symlink)
        *connect_pair(
            {"sa_family": "AF_UNIX", "sun_path": "/var/run/docker.sock"},
            {"sa_family": "AF_UNIX", "sun_path": "/run/docker.sock"},
            tid=4,
        ),
        # a failed connect: the kernel kept no peer, the event has the tracer's read
        *connect_pair(inet("127.0.0.1", 1), inet("127.0.0.1", 2), tid=5, ret=-111),
        # another socket's event
        *connect_pair(inet("127.0.0.1", 1), inet("127.0.0.1", 2), tid=6, fd=5, kernel_fd=6),
    ]
    assert_silent(ConnectArgumentTampering, events)


def test_pyt1_and_pyt3_run_with_the_builtins_by_default() -> None:
    ids = [f.sig_metadata.id for f in run_engine(connect_pair(inet("127.0.0.1", 1), inet("127.0.0.1", 2)))]
    assert ids == ["PYT-3"]


def test_a_call_left_unchecked_does_not_shift_the_pairs() -> None:
    """A failed connect still has its kernel event (with the tracer's read): it must pair with it, not the next call's."""
    events = [
        *connect_pair({"sa_family": "AF_UNIX", "sun_path": "/var/run/nscd/socket"}, inet("127.0.0.1", 1), ret=-2),
        *connect_pair(inet("127.0.0.1", 80), inet("127.0.0.1", 80), fd=4, kernel_fd=4),
        *connect_pair({"sa_family": "AF_UNIX", "sun_path": "/tmp/s"}, {"sa_family": "AF_UNIX", "sun_path": "s"}),
        *connect_pair(inet("127.0.0.1", 9), inet("127.0.0.1", 9)),
    ]
    assert_silent(ConnectArgumentTampering, events)


def test_events_without_the_id_they_pair_by_pair_with_nothing_and_are_counted(caplog) -> None:
    """A damaged record without hostThreadId (hostProcessId for exec) has no call to pair with:
    two such halves of different calls would otherwise make a tampering finding out of nothing."""
    from pytracee.engine.dispatch import Engine

    exec_halves = [e for pid in (41, 42) for e in exec_pair("/bin/sh", "/bin/sh", pid=pid)]
    exec_halves[0].fields["hostProcessId"] = 0  # /bin/sh's execve, then another process's exec of /bin/ls
    exec_halves[3].fields["hostProcessId"] = 0
    exec_halves[3].fields["args"][0]["value"] = "/bin/ls"
    connect_halves = list(connect_pair(inet("127.0.0.1", 1), inet("127.0.0.1", 1), tid=51))
    connect_halves += connect_pair(inet("127.0.0.1", 2), inet("127.0.0.1", 2), tid=52)
    connect_halves[0].fields["hostThreadId"] = 0
    connect_halves[3].fields["hostThreadId"] = 0
    for signature, halves, field in (
        (ExecArgumentTampering(), exec_halves, "hostProcessId"),
        (ConnectArgumentTampering(), connect_halves, "hostThreadId"),
    ):
        caplog.clear()
        findings: list = []
        engine = Engine([signature], findings.append)
        for event in halves:
            engine.dispatch(event)
        engine.complete()
        assert findings == [], signature.metadata.id
        warnings = [r.getMessage() for r in caplog.records if "were not paired" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith(f"{signature.metadata.id}: 2 "), warnings
        assert f"had no {field}" in warnings[0] and "forgotten" not in " ".join(r.getMessage() for r in caplog.records)
