"""PYT-1: the execve path the tracer read differs from the one the kernel executed (replay cases)."""

from __future__ import annotations

from pytracee.engine.testing import assert_fires, assert_silent, make_event, run_engine
from pytracee.signatures.secure_tracing import ExecArgumentTampering


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
    from pytracee.signatures.secure_tracing import MAX_PENDING, MAX_PENDING_BYTES

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
