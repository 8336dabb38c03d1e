"""The live collector on this kernel: real programs run, the exact events and fields come out.

Needs root and bpf(); skipped with the reason elsewhere (see collector_support.py).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest
from collector_support import (
    args,
    collect,
    kernel_dev,
    named,
    release,
    run_child,
    spawn_waiting,
    start_collector,
)
from pytracee.collector.collector import KernelFilters

O_ACCMODE, O_WRONLY, O_LARGEFILE = 0o3, 0o1, 0o100000
AT_EMPTY_PATH = 0x1000


def _expected_cgroup_id(pid: int) -> int | None:
    """The cgroup id the collector reports for ``pid`` (inode of its cgroup directory), if findable."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    mounts = Path("/proc/self/mounts").read_text().split()
    if "cgroup2" in mounts[mounts.index("/sys/fs/cgroup") + 1 : mounts.index("/sys/fs/cgroup") + 2]:
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        base = Path("/sys/fs/cgroup")
    else:
        entry = next((line for line in lines if line.split(":")[1] == "memory"), None)
        if entry is None:
            return None
        path, base = entry.split(":", 2)[2], Path("/sys/fs/cgroup/memory")
    try:
        return (base / path.lstrip("/")).stat().st_ino
    except OSError:
        return None


def test_exec_of_a_binary(bpf_object: Path, tmp_path: Path) -> None:
    binary = tmp_path / "trcx_true"
    shutil.copy("/bin/true", binary)
    child = spawn_waiting(f"os.execve({str(binary)!r}, ['trcx_true', 'arg1'], {{'TRCX': '1', 'LD_PRELOAD': ''}})")
    expected_cgroup = _expected_cgroup_id(child.pid)
    events = ["execve", "sched_process_exec", "security_bprm_check", "security_file_open"]
    collector = start_collector(bpf_object, events, filters=KernelFilters(pids={child.pid}))
    try:
        before = time.time_ns()
        release(child)
        got = collect(collector, lambda evs: bool(named(evs, "sched_process_exec")))
        after = time.time_ns()
    finally:
        collector.stop()
    st = binary.stat()
    execve = named(got, "execve")
    assert len(execve) == 1
    ev = execve[0]
    assert ev["eventId"] == "59" and ev["syscall"] == "execve" and ev["returnValue"] == 0
    assert args(ev)["pathname"] == str(binary)
    assert args(ev)["argv"] == ["trcx_true", "arg1"]
    assert args(ev)["envp"] == ["TRCX=1", "LD_PRELOAD="]
    assert ev["hostProcessId"] == ev["hostThreadId"] == child.pid
    assert ev["hostParentProcessId"] == os.getpid()

    (exec_ev,) = named(got, "sched_process_exec")
    a = args(exec_ev)
    assert exec_ev["eventId"] == "715" and exec_ev["processName"] == "trcx_true"
    assert a["cmdpath"] == str(binary)
    assert a["pathname"] == os.path.realpath(binary)
    assert (a["dev"], a["inode"], a["ctime"], a["inode_mode"]) == (
        kernel_dev(st.st_dev),
        st.st_ino,
        st.st_ctime_ns,
        st.st_mode,
    )
    assert a["argv"] == ["trcx_true", "arg1"]
    assert a["env"] == ["TRCX=1", "LD_PRELOAD="]
    assert a["prev_comm"] == ev["processName"] != "trcx_true"
    assert a["invoked_from_kernel"] is False
    assert a["pwd"] == os.getcwd()
    assert a["stdin_type"] == stat.S_IFIFO  # the test's pipe
    assert exec_ev["executable"] == {"path": os.path.realpath(binary)}
    assert exec_ev["syscall"] == "execve"
    ld_so = Path(os.path.realpath("/lib64/ld-linux-x86-64.so.2"))  # the PT_INTERP of /bin/true
    ld_st = ld_so.stat()
    assert a["interpreter_pathname"] == str(ld_so)
    assert (a["interpreter_dev"], a["interpreter_inode"], a["interpreter_ctime"]) == (
        kernel_dev(ld_st.st_dev),
        ld_st.st_ino,
        ld_st.st_ctime_ns,
    )

    (bprm,) = named(got, "security_bprm_check")
    assert args(bprm) == {
        "pathname": os.path.realpath(binary),
        "dev": kernel_dev(st.st_dev),
        "inode": st.st_ino,
        "argv": ["trcx_true", "arg1"],
        "envp": ["TRCX=1", "LD_PRELOAD="],
    }
    assert bprm["processName"] == a["prev_comm"]  # the caller's comm, as at the LSM hook

    # the full context
    for e in (ev, exec_ev, bprm):
        assert before - 10**9 <= e["timestamp"] <= after + 10**9
        assert e["threadStartTime"] <= e["timestamp"]
        assert e["processId"] == e["threadId"] == child.pid  # same pid namespace here
        assert e["parentProcessId"] == os.getpid()
        assert e["userId"] == os.getuid()
        assert e["mountNamespace"] == os.stat("/proc/self/ns/mnt").st_ino
        assert e["pidNamespace"] == os.stat("/proc/self/ns/pid").st_ino
        assert e["hostName"] == socket.gethostname()[:64]
        assert e["containerId"] == "" and e["container"] == {} and e["kubernetes"] == {}
        assert e["contextFlags"] == {"containerStarted": False, "isCompat": False}
        assert e["threadEntityId"] == e["processEntityId"] and e["parentEntityId"] != e["threadEntityId"]
        if expected_cgroup is not None:
            assert e["cgroupId"] == expected_cgroup
    assert ev["threadEntityId"] == exec_ev["threadEntityId"]  # same task across the exec


def test_cat_opens_a_file(bpf_object: Path, tmp_path: Path) -> None:
    cat = tmp_path / "trcx_cat"
    shutil.copy("/bin/cat", cat)
    collector = start_collector(
        bpf_object, ["openat", "close", "security_file_open"], filters=KernelFilters(comms={"trcx_cat"})
    )
    try:
        run_child(
            f"import subprocess; subprocess.run([{str(cat)!r}, '/etc/hostname'], check=True, stdout=subprocess.DEVNULL)"
        )
        got = collect(
            collector,
            lambda evs: bool(
                named(evs, "close", fd=3) and named(evs, "security_file_open", syscall_pathname="/etc/hostname")
            ),
        )
    finally:
        collector.stop()
    st = os.stat("/etc/hostname")
    (opened,) = named(got, "openat", pathname="/etc/hostname")
    assert opened["processName"] == "trcx_cat" and opened["eventId"] == "257"
    assert args(opened)["dirfd"] == -100 and args(opened)["flags"] & O_ACCMODE == os.O_RDONLY
    fd = opened["returnValue"]
    assert fd >= 3
    assert named(got, "close", fd=fd)
    (sfo,) = named(got, "security_file_open", syscall_pathname="/etc/hostname")
    a = args(sfo)
    assert a["pathname"] == os.path.realpath("/etc/hostname")
    assert a["flags"] & O_ACCMODE == os.O_RDONLY and a["flags"] & O_LARGEFILE
    assert (a["dev"], a["inode"], a["ctime"]) == (kernel_dev(st.st_dev), st.st_ino, st.st_ctime_ns)
    assert sfo["syscall"] == "openat" and sfo["eventId"] == "732" and sfo["returnValue"] == 0
    # shared libraries are opened through their full paths too
    assert any(args(e)["pathname"].startswith("/usr/lib/") for e in named(got, "security_file_open"))


def test_write_of_an_elf_header(bpf_object: Path, tmp_path: Path) -> None:
    target = tmp_path / "dropped"
    header = b"\x7fELF\x02\x01\x01\x00" + bytes(range(1, 40))
    collector = start_collector(
        bpf_object, ["magic_write", "security_file_open"], filters=KernelFilters(comms={"trcx_write"})
    )
    try:
        run_child(f"open({str(target)!r}, 'wb').write({header!r})", comm="trcx_write")
        got = collect(collector, lambda evs: bool(named(evs, "magic_write")))
    finally:
        collector.stop()
    st = target.stat()
    (mw,) = named(got, "magic_write", pathname=str(target))
    assert mw["eventId"] == "727" and mw["syscall"] == "write"
    assert args(mw)["bytes"] == base64.b64encode(header[:20]).decode()
    assert (args(mw)["dev"], args(mw)["inode"]) == (kernel_dev(st.st_dev), st.st_ino)
    (sfo,) = named(got, "security_file_open", pathname=str(target))
    assert args(sfo)["flags"] & O_ACCMODE == O_WRONLY


def test_ptrace_traceme(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["ptrace"], filters=KernelFilters(comms={"trcx_ptrace"}))
    try:
        run_child("ctypes.CDLL(None, use_errno=True).ptrace(0, 0, 0, 0)", comm="trcx_ptrace")
        got = collect(collector, bool)
    finally:
        collector.stop()
    (ev,) = named(got, "ptrace")
    assert ev["eventId"] == "101" and ev["returnValue"] == 0
    assert [(a["name"], a["type"], a["value"]) for a in ev["args"]] == [
        ("request", "int64", 0),
        ("pid", "int32", 0),
        ("addr", "trace.Pointer", 0),
        ("data", "trace.Pointer", 0),
    ]


def test_fileless_exec_from_memfd(bpf_object: Path) -> None:
    child = spawn_waiting(
        """
        fd = os.memfd_create("fileless", 0)
        os.write(fd, open("/bin/true", "rb").read())
        os.execve(fd, ["fileless"], {})
        """
    )
    events = ["memfd_create", "execveat", "sched_process_exec"]
    collector = start_collector(bpf_object, events, filters=KernelFilters(pids={child.pid}))
    try:
        release(child)
        got = collect(collector, lambda evs: bool(named(evs, "sched_process_exec")))
    finally:
        collector.stop()
    (memfd,) = named(got, "memfd_create")
    assert args(memfd) == {"name": "fileless", "flags": 0}
    fd = memfd["returnValue"]
    (execveat,) = named(got, "execveat")
    assert args(execveat)["dirfd"] == fd and args(execveat)["pathname"] == ""
    assert args(execveat)["flags"] == AT_EMPTY_PATH and args(execveat)["argv"] == ["fileless"]
    (ev,) = named(got, "sched_process_exec")
    assert args(ev)["pathname"].startswith("memfd:fileless")
    assert args(ev)["cmdpath"] == f"/dev/fd/{fd}" and ev["syscall"] == "execveat"


def test_tcp_connect_accept_and_dup(bpf_object: Path) -> None:
    events = ["connect", "security_socket_connect", "bind", "accept4", "accept", "socket_dup", "dup2"]
    collector = start_collector(bpf_object, events, filters=KernelFilters(comms={"trcx_net"}))
    try:
        proc = run_child(
            """
            srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
            cl = socket.socket(); cl.connect(srv.getsockname())
            conn, peer = srv.accept()
            os.dup2(cl.fileno(), 100)
            print(srv.getsockname()[1], cl.fileno(), peer[1])
            """,
            comm="trcx_net",
        )
        got = collect(collector, lambda evs: bool(named(evs, "socket_dup")))
    finally:
        collector.stop()
    port, cfd, peer_port = map(int, proc.stdout.split())
    remote = {"sa_family": "AF_INET", "sin_port": str(port), "sin_addr": "127.0.0.1"}
    (conn,) = named(got, "connect")
    assert args(conn) == {"sockfd": cfd, "addr": remote, "addrlen": 16}
    (ssc,) = named(got, "security_socket_connect")
    assert args(ssc) == {"sockfd": cfd, "type": socket.SOCK_STREAM, "remote_addr": remote}
    assert ssc["eventId"] == "736" and ssc["syscall"] == "connect"
    (bind,) = named(got, "bind")
    assert args(bind)["addr"] == {"sa_family": "AF_INET", "sin_port": "0", "sin_addr": "127.0.0.1"}
    (acc,) = named(got, "accept4") or named(got, "accept")
    assert args(acc)["addr"] == {"sa_family": "AF_INET", "sin_port": str(peer_port), "sin_addr": "127.0.0.1"}
    (dup,) = named(got, "socket_dup")
    assert args(dup) == {"oldfd": cfd, "newfd": 100, "remote_addr": remote}
    assert dup["syscall"] == "dup2" and dup["eventId"] == "749"


def test_dynamic_code_loading_alerts(bpf_object: Path) -> None:
    collector = start_collector(bpf_object, ["mem_prot_alert"], filters=KernelFilters(comms={"trcx_mprot"}))
    try:
        proc = run_child(
            """
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            addr = libc.mmap(None, 8192, 7, 0x22, -1, 0)      # RWX, private anonymous
            assert libc.mprotect(addr, 8192, 5) == 0           # R-X: W+E -> E
            print(addr)
            """,
            comm="trcx_mprot",
        )
        got = collect(collector, lambda evs: len(evs) >= 2)
    finally:
        collector.stop()
    addr = int(proc.stdout)
    alerts = {args(e)["alert"]: e for e in named(got, "mem_prot_alert")}
    assert set(alerts) == {1, 4}
    assert {k: args(alerts[1])[k] for k in ("addr", "len", "prot", "prev_prot")} == {
        "addr": addr,
        "len": 8192,
        "prot": 7,
        "prev_prot": 0,
    }
    assert alerts[1]["syscall"] == "mmap"
    a4 = args(alerts[4])
    assert (a4["addr"], a4["len"], a4["prot"], a4["pathname"]) == (addr, 8192, 5, "")
    assert a4["prev_prot"] & 0xFF == 0x77  # the VMA's vm_flags: rd wr ex mr mw me (tests/test_mem_prot_alert.py)
    assert alerts[4]["syscall"] == "mprotect" and alerts[4]["eventId"] == "724"


def test_rename_mount_and_fork_exit(bpf_object: Path, tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")
    (tmp_path / "mnt").mkdir()
    events = [
        "rename",
        "security_inode_rename",
        "mount",
        "security_sb_mount",
        "umount2",
        "sched_process_fork",
        "sched_process_exit",
    ]
    collector = start_collector(bpf_object, events, filters=KernelFilters(comms={"trcx_fs"}))
    try:
        proc = run_child(
            f"""
            os.chdir({str(tmp_path)!r})
            os.rename("old", "new")
            libc = ctypes.CDLL(None, use_errno=True)
            mounted = libc.mount(b"none", b"mnt", b"tmpfs", 0, None) == 0
            if mounted:
                libc.umount2(b"mnt", 0)
            pid = os.fork()
            if pid == 0:
                os._exit(3)
            os.waitpid(pid, 0)
            print(int(mounted), pid)
            """,
            comm="trcx_fs",
        )
        got = collect(
            collector, lambda evs: len(named(evs, "sched_process_exit")) >= 1 and bool(named(evs, "sched_process_fork"))
        )
    finally:
        collector.stop()
    mounted, grandchild = map(int, proc.stdout.split())
    (rn,) = named(got, "security_inode_rename")
    assert args(rn) == {"old_path": str(tmp_path / "old"), "new_path": str(tmp_path / "new")}  # made absolute
    (rn_sys,) = named(got, "rename")
    assert args(rn_sys) == {"oldpath": "old", "newpath": "new"}  # as given
    if mounted:
        (sb,) = named(got, "security_sb_mount")
        assert args(sb) == {"dev_name": "none", "path": str(tmp_path / "mnt"), "type": "tmpfs", "flags": 0}
        (m,) = named(got, "mount")
        assert args(m)["target"] == "mnt" and args(m)["filesystemtype"] == "tmpfs"
    (fork,) = named(got, "sched_process_fork")
    fa = args(fork)
    assert fa["child_pid"] == fa["child_tid"] == grandchild and fa["parent_pid"] == fork["hostProcessId"]
    assert fa["start_time"] >= fa["parent_start_time"] > 0
    exits = {e["hostProcessId"]: args(e) for e in named(got, "sched_process_exit")}
    assert exits[grandchild] == {"exit_code": 3, "signal_code": 0, "process_group_exit": True}


@pytest.mark.parametrize("ring_kb", [4])
def test_lost_events_are_counted(bpf_object: Path, ring_kb: int) -> None:
    collector = start_collector(
        bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_flood"}), ring_buffer_bytes=ring_kb << 10
    )
    try:
        run_child("for _ in range(3000):\n    os.close(os.open('/etc/hostname', os.O_RDONLY))", comm="trcx_flood")
        assert collector.lost > 0  # nothing drained: the 4 KB ring overflowed
        assert collector.lost_reason == "the ring buffer was full (or its lock busy)"
        got = collect(collector)
        assert 0 < len(got) < 3000
    finally:
        collector.stop()
    assert collector.lost > 0 and "ring buffer was full" in collector.lost_reason  # still readable after stop


def test_other_syscalls_record_their_arguments(bpf_object: Path, tmp_path: Path) -> None:
    events = [
        "kill", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "unshare", "setns",
        "process_vm_writev", "chmod", "fchmodat", "unlink", "unlinkat", "renameat2", "umount2", "init_module",
        "finit_module", "dup", "dup3", "open", "openat2", "close",
    ]  # fmt: skip
    collector = start_collector(bpf_object, events, filters=KernelFilters(comms={"trcx_misc"}))
    d = str(tmp_path)
    try:
        run_child(
            f"""
            libc = ctypes.CDLL(None, use_errno=True)
            sc = libc.syscall
            sc.restype = ctypes.c_long
            os.chdir({d!r})
            open("f1", "w").close(); open("f2", "w").close()
            sc(62, os.getpid(), 0)                                   # kill
            sc(105, 0); sc(106, 0); sc(113, -1, 0); sc(114, -1, 0)   # setuid setgid setreuid setregid
            sc(117, 0, 0, 0); sc(119, 0, 0, 0)                       # setresuid setresgid
            sc(272, 0x04000000)                                      # unshare(CLONE_NEWUTS)
            ns = os.open("/proc/self/ns/uts", os.O_RDONLY)
            sc(308, ns, 0x04000000)                                  # setns
            buf = ctypes.create_string_buffer(8); src = ctypes.create_string_buffer(b"abcdefgh")
            iov_l = (ctypes.c_void_p * 2)(ctypes.addressof(src), 8); iov_r = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)
            u = ctypes.c_ulong
            sc(311, os.getpid(), iov_l, u(1), iov_r, u(1), u(0))     # process_vm_writev
            sc(90, b"f1", 0o600); sc(268, -100, b"f2", 0o640, 0)     # chmod fchmodat
            sc(316, -100, b"f1", -100, b"f3", 1)                     # renameat2(RENAME_NOREPLACE)
            sc(87, b"f3"); sc(263, -100, b"f2", 0)                   # unlink unlinkat
            sc(166, b"/nonexistent", 2)                              # umount2(MNT_DETACH)
            sc(175, 0, 0, b"a=b"); sc(313, ns, b"p=1", 0)            # init_module finit_module
            fd = sc(32, ns); sc(292, ns, 77, 0o2000000)              # dup dup3(O_CLOEXEC)
            fd2 = sc(2, b"/etc/hostname", 0, 0)                      # open
            how = (ctypes.c_uint64 * 3)(0, 0, 0)
            fd3 = sc(437, -100, b"/etc/hostname", how, 24)           # openat2
            os.close(fd2); os.close(fd3)
            """,
            comm="trcx_misc",
        )
        got = collect(collector)
    finally:
        collector.stop()
    by_name = {e["eventName"]: e for e in got}
    pid = by_name["kill"]["hostProcessId"]
    expect = {
        "kill": {"pid": pid, "sig": 0},
        "setuid": {"uid": 0},
        "setgid": {"gid": 0},
        "setreuid": {"ruid": 0xFFFFFFFF, "euid": 0},
        "setregid": {"rgid": 0xFFFFFFFF, "egid": 0},
        "setresuid": {"ruid": 0, "euid": 0, "suid": 0},
        "setresgid": {"rgid": 0, "egid": 0, "sgid": 0},
        "unshare": {"flags": 0x04000000},
        "chmod": {"pathname": "f1", "mode": 0o600},
        "fchmodat": {"dirfd": -100, "pathname": "f2", "mode": 0o640, "flags": 0},
        "renameat2": {"olddirfd": -100, "oldpath": "f1", "newdirfd": -100, "newpath": "f3", "flags": 1},
        "unlink": {"pathname": "f3"},
        "unlinkat": {"dirfd": -100, "pathname": "f2", "flags": 0},
        "umount2": {"target": "/nonexistent", "flags": 2},
        "init_module": {"module_image": 0, "len": 0, "param_values": "a=b"},
        "open": {"pathname": "/etc/hostname", "flags": 0, "mode": 0},
    }
    for name, values in expect.items():
        assert args(by_name[name]) == values, name
    ns_fd = args(by_name["setns"])["fd"]
    assert args(by_name["setns"]) == {"fd": ns_fd, "nstype": 0x04000000}
    assert args(by_name["finit_module"]) == {"fd": ns_fd, "param_values": "p=1", "flags": 0}
    assert args(by_name["dup"]) == {"oldfd": ns_fd} and by_name["dup"]["returnValue"] > ns_fd
    assert (
        args(by_name["dup3"]) == {"oldfd": ns_fd, "newfd": 77, "flags": 0o2000000}
        and by_name["dup3"]["returnValue"] == 77
    )
    pvw = args(by_name["process_vm_writev"])
    assert (pvw["pid"], pvw["liovcnt"], pvw["riovcnt"], pvw["flags"]) == (pid, 1, 1, 0) and pvw["local_iov"] > 0
    assert by_name["process_vm_writev"]["returnValue"] == 8
    o2 = args(by_name["openat2"])
    assert (o2["dirfd"], o2["pathname"], o2["size"]) == (-100, "/etc/hostname", 24) and o2["how"] > 0
    assert by_name["init_module"]["returnValue"] < 0  # no module support here, or not permitted
    assert {e["returnValue"] for e in named(got, "close")} == {0}


def test_an_object_from_other_sources_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """A BPF object that lacks the collector's maps (a stale cached build) says what to do."""
    import subprocess

    from pytracee.collector.collector import Collector
    from pytracee.collector.loader import IncompatibleObjectError

    src = tmp_path / "other.bpf.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");\n'
        'SEC("raw_tp/sys_enter") int tracee_sys_enter(void *ctx) { return 0; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    obj = tmp_path / "other.bpf.o"
    subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
    )
    collector = Collector(obj, None, ["openat"])
    with pytest.raises(
        IncompatibleObjectError, match=r"not built from this version's bpf/ sources \(no map .*compat_ids.*rebuild it"
    ):
        collector.start()


def test_a_static_binary_has_no_interpreter(bpf_object: Path, tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "static.c"
    src.write_text("int main(void) { return 0; }\n")
    binary = tmp_path / "trcx_static"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(src)], check=True, capture_output=True)
    collector = start_collector(bpf_object, ["sched_process_exec"], filters=KernelFilters(comms={"trcx_static"}))
    try:
        subprocess.run([str(binary)], check=True)
        got = collect(collector, lambda evs: bool(named(evs, "sched_process_exec")))
    finally:
        collector.stop()
    (exec_ev,) = named(got, "sched_process_exec")
    a = args(exec_ev)
    assert a["pathname"] == str(binary)
    assert (a["interpreter_pathname"], a["interpreter_dev"], a["interpreter_inode"], a["interpreter_ctime"]) == (
        "",
        0,
        0,
        0,
    )


def test_without_find_vma_exec_events_have_no_interpreter(
    bpf_object: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exec_interp is optional: without kernel BTF it is not loaded and exec events come without the interpreter."""
    from pytracee.collector import loader

    binary = tmp_path / "trcx_nointerp"
    shutil.copy("/bin/true", binary)
    for kernel_btf, expect_interp in ((loader.KERNEL_BTF, True), (Path("/nonexistent/vmlinux"), False)):
        monkeypatch.setattr(loader, "KERNEL_BTF", kernel_btf)
        collector = start_collector(bpf_object, ["sched_process_exec"], filters=KernelFilters(comms={"trcx_nointerp"}))
        try:
            import subprocess

            subprocess.run([str(binary)], check=True)
            got = collect(collector, lambda evs: bool(named(evs, "sched_process_exec")))
        finally:
            collector.stop()
        assert ("exec_interp" in collector.tail_programs) is expect_interp
        (exec_ev,) = named(got, "sched_process_exec")
        assert args(exec_ev)["pathname"] == str(binary)
        assert bool(args(exec_ev)["interpreter_pathname"]) is expect_interp
