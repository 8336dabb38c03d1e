"""Secure tracing live: the kernel's view on the LSM events, races won for real, honest programs left alone.

The race programs (tests/programs/*_race.c) swap a syscall's argument buffer from a
second thread while the first makes the call; ``tracee`` must report what the kernel
really did (PYT-2, PYT-3), with the syscall event behind it on the finding. Honest
programs that make the kernel's path differ from the one passed (relative paths,
symlinks, ``..``, /proc/self/fd, renames during the open) get no finding. Every
workload runs under its own command name, which the in-kernel filter selects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from collector_support import Tracee, args, collect, named, run_child, start_collector
from pytracee.collector.collector import KernelFilters

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def live(bpf_object: Path) -> Path:
    """Root, bpf() and the built object (``tracee`` finds it in the checkout)."""
    return bpf_object


def build(tmp_path: Path, name: str) -> Path:
    program = tmp_path / name
    source = REPO / "tests" / "programs" / f"{name}.c"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(program), str(source)], check=True)
    return program


def test_security_socket_connect_carries_the_peer_the_kernel_connected(bpf_object: Path, tmp_path: Path) -> None:
    collector = start_collector(
        bpf_object, ["connect", "security_socket_connect"], filters=KernelFilters(comms={"pyt_peer"})
    )
    try:
        proc = run_child(
            f"""
            os.chdir({str(tmp_path)!r})
            srv = socket.socket(socket.AF_UNIX); srv.bind("srv.sock"); srv.listen(1)  # a relative bind name
            os.symlink("srv.sock", "link.sock")
            cl = socket.socket(socket.AF_UNIX); cl.connect({str(tmp_path / "link.sock")!r})
            ab = socket.socket(socket.AF_UNIX); ab.bind("\\0pyt-abstract"); ab.listen(1)
            ca = socket.socket(socket.AF_UNIX); ca.connect("\\0pyt-abstract")
            v6 = socket.socket(socket.AF_INET6); v6.bind(("::1", 0)); v6.listen(1)
            c6 = socket.socket(socket.AF_INET6); c6.connect(("::1", v6.getsockname()[1]))
            closed = socket.socket(); closed.bind(("127.0.0.1", 0)); port = closed.getsockname()[1]; closed.close()
            refused = socket.socket()
            try:
                refused.connect(("127.0.0.1", port))
            except ConnectionRefusedError:
                pass
            print(cl.fileno(), ca.fileno(), c6.fileno(), v6.getsockname()[1], refused.fileno(), port)
            """,
            comm="pyt_peer",
        )
        got = collect(collector, lambda evs: len(named(evs, "security_socket_connect")) >= 4)
    finally:
        collector.stop()
    unix_fd, abstract_fd, v6_fd, v6_port, refused_fd, closed_port = map(int, proc.stdout.split())
    # UNIX: the tracer read the path passed; the kernel's peer is named as its server bound it
    (unix,) = named(got, "security_socket_connect", sockfd=unix_fd)
    assert args(unix)["remote_addr"] == {"sa_family": "AF_UNIX", "sun_path": "srv.sock"}
    (unix_call,) = named(got, "connect", sockfd=unix_fd)
    assert args(unix_call)["addr"]["sun_path"] == str(tmp_path / "link.sock")
    (abstract,) = named(got, "security_socket_connect", sockfd=abstract_fd)
    assert args(abstract)["remote_addr"] == {"sa_family": "AF_UNIX", "sun_path": "@pyt-abstract"}
    (v6,) = named(got, "security_socket_connect", sockfd=v6_fd)
    peer = args(v6)["remote_addr"]
    assert peer["sa_family"] == "AF_INET6" and peer["sin6_addr"] == "::1" and peer["sin6_port"] == str(v6_port)
    # refused: the kernel kept no peer; the event has the address the tracer read
    (refused,) = named(got, "security_socket_connect", sockfd=refused_fd)
    assert args(refused)["remote_addr"] == {
        "sa_family": "AF_INET",
        "sin_port": str(closed_port),
        "sin_addr": "127.0.0.1",
    }
    # each LSM event follows its syscall's event
    names = [e["eventName"] for e in got if e["eventName"] in ("connect", "security_socket_connect")]
    assert names == ["connect", "security_socket_connect"] * (len(names) // 2)


def test_connect_race_is_caught_with_the_syscall_on_the_finding(tmp_path: Path) -> None:
    racer = build(tmp_path, "connect_race")
    tracee = Tracee("--rules", "PYT-3", "-s", "comm=connect_race", "--output-template", "rawjson")
    for _ in range(5):  # the machine's other load may keep the flipper off the CPU for a while
        subprocess.run([str(racer), "40001", "40002", "3000"], check=True, timeout=300)
    status, findings, err = tracee.stop()
    assert status == 0, err
    tampered = [f for f in findings if f["SigMetadata"]["ID"] == "PYT-3"]
    assert tampered, f"no race won in 15000 attempts:\n{err}"
    for finding in tampered:
        data = finding["Data"]
        claimed, peer = data["syscall address"], data["kernel address"]
        assert {claimed["port"], peer["port"]} == {"40001", "40002"} and peer["ip"] == "127.0.0.1"
        assert finding["Context"]["eventName"] == "security_socket_connect"
        syscall = data["syscall_event"]  # the syscall event, as the tracer read it
        assert syscall["name"] == "connect" and syscall["returnValue"] == 0
        assert syscall["args"]["addr"]["sin_port"] == claimed["port"]


def test_open_race_is_caught(tmp_path: Path) -> None:
    racer = build(tmp_path, "open_race")
    (tmp_path / "aaaa").write_text("a")
    (tmp_path / "bbbb").write_text("b")
    first, second = str(tmp_path / "aaaa"), str(tmp_path / "bbbb")
    tracee = Tracee("--rules", "PYT-2", "-s", "comm=open_race", "--output-template", "rawjson")
    for _ in range(5):
        subprocess.run([str(racer), first, second, "20000"], check=True, timeout=300)
    status, findings, err = tracee.stop()
    assert status == 0, err
    tampered = [f for f in findings if f["SigMetadata"]["ID"] == "PYT-2"]
    assert tampered, f"no race won in 100000 attempts:\n{err}"
    for finding in tampered:
        data = finding["Data"]
        assert data["kernel pathname"] in (first, second)
        assert data["syscall pathname"] != data["kernel pathname"]
        assert data["syscall_event"]["args"]["pathname"] == data["syscall pathname"]


# An honest program: the kernel's path differs from the one passed, the buffers never change.
HONEST = r"""
import threading
os.chdir(WORK)
os.makedirs("sub", exist_ok=True)
open("file", "w").write("x")
os.symlink("file", "link")
os.symlink(WORK, "dirlink")
for _ in range(50):
    for path in ("file", "./file", "sub/../file", "link", "dirlink/file", WORK + "/sub/../link"):
        os.close(os.open(path, os.O_RDONLY))
    fd = os.open("file", os.O_RDONLY)
    os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
    os.close(os.open(f"/dev/fd/{fd}", os.O_RDONLY))
    os.close(fd)
    dirfd = os.open("sub", os.O_RDONLY)
    os.close(os.open("../file", os.O_RDONLY, dir_fd=dirfd))
    os.close(dirfd)
# renames while the file is being opened
stop = False
def rename():
    while not stop:
        os.rename("moving", "moved")
        os.rename("moved", "moving")
open("moving", "w").write("x")
renamer = threading.Thread(target=rename)
renamer.start()
for _ in range(2000):
    try:
        os.close(os.open("moving", os.O_RDONLY))
    except FileNotFoundError:
        pass
stop = True
renamer.join()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
for host in ("127.0.0.1", "0.0.0.0", "localhost"):
    c = socket.socket(); c.connect((host, srv.getsockname()[1])); c.close()
u = socket.socket(socket.AF_UNIX); u.bind("s.sock"); u.listen(8)
os.symlink("s.sock", "s.link")
for path in ("s.sock", "./s.link", WORK + "/sub/../s.sock"):
    c = socket.socket(socket.AF_UNIX); c.connect(path); c.close()
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(("127.0.0.1", 9)); c.close()
print("done")
"""


def test_honest_programs_raise_no_secure_tracing_finding(tmp_path: Path) -> None:
    tracee = Tracee("--rules", "PYT-1,PYT-2,PYT-3", "-s", "comm=pyt_honest", "--output-template", "rawjson")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_child(f"WORK = {str(work)!r}\n" + HONEST, comm="pyt_honest", timeout=120)
    assert proc.stdout.strip() == "done"
    status, findings, err = tracee.stop()
    assert status == 0, err
    wrong = [f for f in findings if f["SigMetadata"]["ID"].startswith("PYT-")]
    assert wrong == [], json.dumps(wrong, indent=1)
    assert "0 findings" in err and " 0 lost" in err, err


LSM_RULE = """
from pytracee.engine import Event, select, signature

@signature(id="LSM-1", name="Any LSM event", severity=1, events=[
    select("security_file_open", pathname="*/pyt-ctx-*"), select("security_bprm_check"),
    select("security_socket_connect"), select("security_inode_rename"), select("security_sb_mount")])
def any_lsm(event: Event) -> dict:
    return {"lsm": event.name}
"""

CALLS = r"""
import subprocess
os.chdir(WORK)
os.close(os.open("pyt-ctx-file", os.O_CREAT | os.O_RDONLY))
os.rename("pyt-ctx-file", "pyt-ctx-moved")
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.socket(); c.connect(srv.getsockname())
os.mkdir("mnt")
libc = ctypes.CDLL(None, use_errno=True)
assert libc.mount(b"pyt-ctx-tmpfs", b"mnt", b"tmpfs", 0, None) == 0, ctypes.get_errno()
libc.umount2(b"mnt", 0)
os.execv(WORK + "/pyt_ctx", ["pyt_ctx"])  # a copy of true: its command name stays in the comm filter
"""


def test_findings_on_each_lsm_event_carry_the_syscall_live(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "any_lsm.py").write_text(LSM_RULE)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2("/bin/true", work / "pyt_ctx")
    syscalls = "openat,renameat2,rename,connect,mount,execve"
    tracee = Tracee(
        "--rules-dir", str(rules), "--rules", "LSM-1", "-e", syscalls, "-s", "comm=pyt_ctx", "-o", "none",
        "--output-template", "rawjson",
    )  # fmt: skip
    subprocess.run(
        [
            "python3",
            "-c",
            f"import os, socket, ctypes\nopen('/proc/self/comm', 'w').write('pyt_ctx')\nWORK = {str(work)!r}\n" + CALLS,
        ],
        check=True,
        timeout=60,
    )
    status, findings, err = tracee.stop()
    assert status == 0, err
    by_lsm = {
        f["Data"]["lsm"]: f["Data"].get("syscall_event")
        for f in findings
        if f["Context"]["processName"] in ("pyt_ctx", "true")
    }
    assert set(by_lsm) == {
        "security_file_open", "security_inode_rename", "security_socket_connect", "security_sb_mount", "security_bprm_check",
    }, err  # fmt: skip
    assert by_lsm["security_file_open"]["name"] == "openat"
    assert by_lsm["security_file_open"]["args"]["pathname"] == "pyt-ctx-file"
    assert by_lsm["security_inode_rename"]["args"]["oldpath"] == "pyt-ctx-file"
    assert by_lsm["security_socket_connect"]["args"]["addr"]["sin_addr"] == "127.0.0.1"
    assert by_lsm["security_sb_mount"]["args"]["source"] == "pyt-ctx-tmpfs"
    assert by_lsm["security_sb_mount"]["returnValue"] == 0
    assert by_lsm["security_bprm_check"] == {**by_lsm["security_bprm_check"], "name": "execve"}
    assert by_lsm["security_bprm_check"]["args"]["pathname"] == str(work / "pyt_ctx")
