"""In-kernel filters, the collector's lifecycle and its errors (live where it needs bpf())."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from collector_support import (
    args,
    attached_program_ids,
    collect,
    named,
    release,
    run_child,
    spawn_waiting,
    start_collector,
    wait_unloaded,
)
from pytracee.collector.collector import Collector, KernelFilters, supported_events

OPEN_HOSTNAME = "os.close(os.open('/etc/hostname', os.O_RDONLY))"
CLONE_NEWNS = 0x00020000


def _hostname_opens(events: list[dict]) -> set[int]:
    """Host pids of the processes seen opening /etc/hostname."""
    return {e["hostProcessId"] for e in named(events, "openat", pathname="/etc/hostname")}


def test_pid_filter_keeps_only_the_selected_process(bpf_object: Path) -> None:
    wanted, other = spawn_waiting(OPEN_HOSTNAME), spawn_waiting(OPEN_HOSTNAME)
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(pids={wanted.pid}))
    try:
        release(other)
        release(wanted)
        got = collect(collector, lambda evs: wanted.pid in _hostname_opens(evs))
        got += collect(collector)
    finally:
        collector.stop()
    assert {e["hostProcessId"] for e in got} == {wanted.pid}


def test_comm_filter(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_yes"}))
    try:
        run_child(OPEN_HOSTNAME, comm="trcx_no")
        run_child(OPEN_HOSTNAME, comm="trcx_yes")
        got = collect(collector, lambda evs: bool(_hostname_opens(evs)))
        got += collect(collector)
    finally:
        collector.stop()
    assert got and {e["processName"] for e in got} == {"trcx_yes"}


def test_uid_filter(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(uids={65534}, comms={"trcx_uid"}))
    try:
        run_child(OPEN_HOSTNAME, comm="trcx_uid")  # root: filtered out
        run_child(f"os.setuid(65534)\n{OPEN_HOSTNAME}", comm="trcx_uid")
        got = collect(collector, lambda evs: bool(_hostname_opens(evs)))
    finally:
        collector.stop()
    assert got and {e["userId"] for e in got} == {65534}


def test_container_only_and_mount_namespace_filters(bpf_object: Path) -> None:
    unshared = f"assert ctypes.CDLL(None, use_errno=True).unshare({CLONE_NEWNS}) == 0\n{OPEN_HOSTNAME}"
    own_ns = os.stat("/proc/self/ns/mnt").st_ino
    # this process's namespace stands for the host's (the real one may be out of reach here)
    filters = KernelFilters(container_only=True, host_mnt_ns=own_ns, comms={"trcx_ns"})
    only_other_ns = start_collector(bpf_object, ["openat"], filters=filters)
    try:
        run_child(OPEN_HOSTNAME, comm="trcx_ns")
        run_child(unshared, comm="trcx_ns")
        got = collect(only_other_ns, lambda evs: bool(_hostname_opens(evs)))
        got += collect(only_other_ns)
    finally:
        only_other_ns.stop()
    assert got and all(e["mountNamespace"] != own_ns for e in got)

    only_own_ns = start_collector(bpf_object, ["openat"], filters=KernelFilters(mnt_ns={own_ns}, comms={"trcx_ns"}))
    try:
        run_child(unshared, comm="trcx_ns")
        run_child(OPEN_HOSTNAME, comm="trcx_ns")
        got = collect(only_own_ns, lambda evs: bool(_hostname_opens(evs)))
        got += collect(only_own_ns)
    finally:
        only_own_ns.stop()
    assert got and {e["mountNamespace"] for e in got} == {own_ns}


@pytest.mark.parametrize("follow", [True, False])
def test_follow_traces_descendants(bpf_object: Path, follow: bool) -> None:
    body = f"""
    pid = os.fork()
    if pid == 0:
        open('/proc/self/comm', 'w').write('trcx_kid')
        {OPEN_HOSTNAME}
        os._exit(0)
    os.waitpid(pid, 0)
    print(pid)
    """
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_parent"}, follow=follow))
    try:
        kid = int(run_child(body, comm="trcx_parent").stdout)
        got = collect(collector)
    finally:
        collector.stop()
    assert (kid in _hostname_opens(got)) is follow


def test_new_pids_only(bpf_object: Path) -> None:
    old = spawn_waiting(f"open('/proc/self/comm', 'w').write('trcx_age')\n{OPEN_HOSTNAME}")
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(new_pids_only=True, comms={"trcx_age"}))
    try:
        release(old)
        new = run_child(f"{OPEN_HOSTNAME}\nprint(os.getpid())", comm="trcx_age")
        got = collect(collector, lambda evs: bool(_hostname_opens(evs)))
        got += collect(collector)
    finally:
        collector.stop()
    assert _hostname_opens(got) == {int(new.stdout)}


def test_the_collector_never_traces_itself(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["openat"])
    try:
        for _ in range(20):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        got = collect(collector)
    finally:
        collector.stop()
    assert all(e["hostProcessId"] != os.getpid() for e in got)


def test_stop_detaches_every_program_and_is_idempotent(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["openat", "sched_process_fork", "security_file_open", "execve"])
    ids = set(collector.program_ids)
    assert {"tracee_sys_enter", "tracee_sys_exit", "tracee_sched_fork", "tracee_sched_exec"} <= set(
        collector.attached_programs
    )
    assert ids and ids <= attached_program_ids()
    collector.stop()
    collector.stop()
    assert not wait_unloaded(ids)
    with pytest.raises(RuntimeError):
        collector.poll(0)


def test_context_manager_stops(bpf_object: Path) -> None:
    with Collector(bpf_object, None, ["execve"]) as collector:
        ids = set(collector.program_ids)
        assert ids <= attached_program_ids()
    assert not wait_unloaded(ids)


def test_unknown_events_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no_such_event, security_file_mprotect"):
        Collector(tmp_path / "x.o", None, ["openat", "no_such_event", "security_file_mprotect"])
    with pytest.raises(ValueError, match="no events"):
        Collector(tmp_path / "x.o", None, [])
    with pytest.raises(ValueError, match="longer than 15"):
        Collector(tmp_path / "x.o", None, ["openat"], filters=KernelFilters(comms={"a" * 16}))
    with pytest.raises(ValueError, match="at most 1024 pids"):
        Collector(tmp_path / "x.o", None, ["openat"], filters=KernelFilters(pids=set(range(2000))))


def test_supported_events_cover_the_signatures_inputs() -> None:
    needed = {
        "execve", "execveat", "openat", "openat2", "open", "close", "dup", "dup2", "dup3", "connect", "accept",
        "accept4", "bind", "ptrace", "process_vm_writev", "memfd_create", "mprotect", "mmap", "mount", "umount2",
        "unshare", "setns", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "init_module",
        "finit_module", "kill", "chmod", "fchmodat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "sched_process_exec", "sched_process_fork", "sched_process_exit", "security_bprm_check",
        "security_file_open", "security_socket_connect", "security_inode_rename", "security_sb_mount",
        "magic_write", "mem_prot_alert", "socket_dup",
    }  # fmt: skip
    assert needed <= set(supported_events())


def test_filter_flags() -> None:
    assert KernelFilters().flags() == 0
    assert KernelFilters(pids={1}, comms={"x"}, follow=True).flags() == 0x01 | 0x04 | 0x20
    assert (
        KernelFilters(uids={0}, mnt_ns={1}, container_only=True, new_pids_only=True).flags()
        == 0x02 | 0x08 | 0x10 | 0x40
    )


# ---- the Makefile contract ------------------------------------------------------------


def test_non_core_build_and_reduced_btf_load(bpf_object: Path, tmp_path: Path) -> None:
    """`make OUT=... CORE=0` builds a fixed-offset object; `min-btf` a reduced BTF libbpf relocates against."""
    import subprocess

    bpf_dir = bpf_object.parent
    out = tmp_path / "gen" / "tracee.bpf.o"
    proc = subprocess.run(
        ["make", "-C", str(bpf_dir), f"OUT={out}", "CORE=0"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "BPF_NO_PRESERVE_ACCESS_INDEX" in proc.stdout and (out.parent / "vmlinux.h").exists()
    min_btf = tmp_path / "tracee.min.btf"
    proc = subprocess.run(
        ["make", "-C", str(bpf_dir), "min-btf", f"MIN_BTF={min_btf}"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for obj, btf in ((out, None), (bpf_object, min_btf)):
        collector = Collector(obj, btf, ["openat", "security_file_open"], filters=KernelFilters(comms={"trcx_build"}))
        collector.start()
        try:
            run_child(OPEN_HOSTNAME, comm="trcx_build")
            got = collect(
                collector, lambda evs: bool(named(evs, "security_file_open", syscall_pathname="/etc/hostname"))
            )
        finally:
            collector.stop()
        assert named(got, "security_file_open", pathname=os.path.realpath("/etc/hostname")), obj
    bad = subprocess.run(
        ["make", "-C", str(bpf_dir), f"OUT={out}", "KERN_HEADERS=/usr/src"], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0 and "KERN_HEADERS" in bad.stderr


def test_syscalls_recorded_at_exit_need_no_sys_enter_and_keep_their_arguments(bpf_object: Path) -> None:
    """openat, close and connect are recorded whole at exit: no sys_enter program is attached,
    and the arguments (registers and the path in memory) are those the syscall was given."""
    events = ["openat", "close", "connect"]
    collector = start_collector(bpf_object, events, filters=KernelFilters(comms={"trcx_exitargs"}))
    try:
        assert "tracee_sys_exit" in collector.attached_programs
        assert "tracee_sys_enter" not in collector.attached_programs
        child = run_child(
            "fd = os.open('/etc/hostname', os.O_RDONLY | os.O_CLOEXEC)\n"
            "os.close(fd)\n"
            "try:\n    os.open('/nonexistent/trcx', os.O_WRONLY)\nexcept OSError:\n    pass\n"
            "s = socket.socket()\ntry:\n    s.connect(('127.0.0.1', 9))\nexcept OSError:\n    pass\n"
            "print(fd)\n",
            comm="trcx_exitargs",
        )
        fd = int(child.stdout)
        got = collect(collector, lambda evs: bool(named(evs, "connect")))
        got += collect(collector)
    finally:
        collector.stop()
    assert {e["processName"] for e in got} == {"trcx_exitargs"}
    (ok,) = named(got, "openat", pathname="/etc/hostname")
    assert args(ok) == {"dirfd": -100, "pathname": "/etc/hostname", "flags": os.O_RDONLY | os.O_CLOEXEC, "mode": 0}
    assert ok["returnValue"] == fd and ok["syscall"] == "openat"
    (failed,) = named(got, "openat", pathname="/nonexistent/trcx")
    assert args(failed)["flags"] & os.O_ACCMODE == os.O_WRONLY and failed["returnValue"] == -2  # ENOENT
    closes = named(got, "close")
    assert fd in {args(e)["fd"] for e in closes} and all(e["syscall"] == "close" for e in closes)
    (connect,) = named(got, "connect")
    assert args(connect)["addr"] == {"sa_family": "AF_INET", "sin_port": "9", "sin_addr": "127.0.0.1"}
