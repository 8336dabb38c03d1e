"""``--capture`` live, as root: what the kernel copies is what the process wrote, read,
executed, unpacked in memory or asked the kernel to load, byte for byte.

Every test traces only its own workload child (and, with follow, the child's children),
so other processes on the machine never reach its artifacts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_support import build_object, collect, require_bpf, start_collector
from pytracee.collector.capture import CaptureManager, parse_capture
from pytracee.collector.collector import KernelFilters
from pytracee.engine.findings import Finding

Event = dict[str, Any]

pytestmark = pytest.mark.usefixtures("bpf_ready")


@pytest.fixture(scope="module")
def bpf_ready() -> None:
    require_bpf()


@pytest.fixture(scope="module")
def obj() -> Path:
    return build_object()


@pytest.fixture
def work() -> Iterator[Path]:
    """A short private directory (path filters are at most 50 characters)."""
    path = Path(tempfile.mkdtemp(prefix="capt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _child(body: str) -> subprocess.Popen[str]:
    code = "import os, sys, ctypes, socket, time, mmap\nsys.stdin.readline()\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_captured(
    obj: Path,
    capdir: Path,
    options: list[str],
    body: str,
    events: tuple[str, ...] = (),
    timeout: float = 30,
    read_while_running: bool = True,
) -> tuple[list[Event], CaptureManager, str]:
    """Trace a workload child with ``--capture options`` into ``capdir``; every event, the
    manager and the child's stdout once all artifacts were reported."""
    manager = CaptureManager(parse_capture([*options, f"dir:{capdir}"]))
    child = _child(body)
    collector = start_collector(obj, events, filters=KernelFilters(pids={child.pid}, follow=True), capture=manager)
    seen: list[Event] = []
    try:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
        deadline = time.monotonic() + timeout
        while child.poll() is None and time.monotonic() < deadline:  # read as tracee does, while it runs
            if read_while_running:
                seen += collector.poll(100)
            else:
                time.sleep(0.1)
        child.wait(timeout=5)
        assert child.stdout is not None and child.stderr is not None
        out, err = child.stdout.read(), child.stderr.read()
        assert child.returncode == 0, err
        seen += collect(collector, timeout=3.0)
        lost_events = collector.lost
        collector.detach()
        for _ in range(100):  # the drain after the stop: the remaining artifacts are reported
            batch = collector.poll(0)
            if not batch:
                break
            seen += batch
    finally:
        collector.stop()
        manager.release()
    assert lost_events == 0  # capture never takes the event stream's room
    return seen, manager, out


def artifacts(events: list[Event], name: str) -> list[dict[str, Any]]:
    return [{a["name"]: a["value"] for a in e["args"]} for e in events if e["eventName"] == name]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- write -----------------------------------------------------------------------------------


def test_a_write_under_the_filter_is_captured_byte_for_byte_and_one_outside_is_not(obj: Path, work: Path) -> None:
    watched, other = work / "watched", work / "other"
    watched.mkdir()
    other.mkdir()
    body = f"""
    data = os.urandom(300_000)
    with open({str(watched / "payload.bin")!r}, "wb", buffering=0) as f:
        f.write(data[:100_000])
        f.write(data[100_000:])
        os.pwrite(f.fileno(), b"PATCHED", 5000)     # pwrite64 at an offset
        os.writev(f.fileno(), [b"tail-1|", b"tail-2"])
    with open({str(other / "ignored.bin")!r}, "wb") as f:
        f.write(b"not captured")
    """
    events, manager, _ = run_captured(obj, work / "cap", [f"write={watched}/*"], body)
    expected = (watched / "payload.bin").read_bytes()
    ignored_inode = (other / "ignored.bin").stat().st_ino
    found = artifacts(events, "capture_file_write")
    assert [a["pathname"] for a in found] == [str(watched / "payload.bin")]
    art = found[-1]
    st = (watched / "payload.bin").stat()
    assert (
        Path(art["artifact"]).name == f"write.dev-{os.major(st.st_dev) << 20 | os.minor(st.st_dev)}.inode-{st.st_ino}"
    )
    assert Path(art["artifact"]).read_bytes() == expected
    assert art["sha256"] == sha(expected) and art["size"] == len(expected)
    assert art["incomplete"] is False and art["lost_chunks"] == 0
    assert not any(f"inode-{ignored_inode}" in p.name for p in manager.out_dir.rglob("*"))
    # owned by root, 0600 files in 0700 directories
    assert stat.S_IMODE(os.stat(art["artifact"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(Path(art["artifact"]).parent).st_mode) == 0o700
    assert stat.S_IMODE(manager.out_dir.stat().st_mode) == 0o700


def test_bytes_moved_file_to_file_by_the_kernel_make_the_artifact_incomplete(obj: Path, work: Path) -> None:
    """copy_file_range and sendfile (what cp and cat use) have no user buffer to copy from:
    their bytes are counted as not captured, never a silent hole in a complete-looking file."""
    watched = work / "watched"
    watched.mkdir()
    (work / "src.bin").write_bytes(b"S" * 70_000)
    body = f"""
    src = os.open({str(work / "src.bin")!r}, os.O_RDONLY)
    dst = os.open({str(watched / "copied.bin")!r}, os.O_WRONLY | os.O_CREAT, 0o600)
    moved = os.copy_file_range(src, dst, 50_000)
    moved += os.sendfile(dst, src, None, 20_000)
    os.write(dst, b"written")
    print(moved)
    """
    events, manager, out = run_captured(obj, work / "cap", [f"write={watched}/*"], body)
    assert int(out) == 70_000
    (art,) = artifacts(events, "capture_file_write")
    assert art["incomplete"] is True
    assert art["not_captured"] == 70_000
    assert Path(art["artifact"]).read_bytes()[70_000:] == b"written"
    assert "bytes not copied (over a size budget" in manager.summary()


def test_pipe_and_socket_types_are_captured_and_a_regular_file_is_not(obj: Path, work: Path) -> None:
    body = f"""
    r, w = os.pipe()
    os.write(w, b"through the pipe")
    os.read(r, 100)
    a, b = socket.socketpair()
    a.send(b"ignored: send is not write")
    os.write(a.fileno(), b"over the socket, ")
    os.write(a.fileno(), b"appended")
    with open({str(work / "regular.txt")!r}, "w") as f:
        f.write("regular file")
    """
    events, _, _ = run_captured(obj, work / "cap", ["write:type=pipe", "write:type=socket"], body)
    contents = sorted(Path(a["artifact"]).read_bytes() for a in artifacts(events, "capture_file_write"))
    assert contents == [b"over the socket, appended", b"through the pipe"]


def test_the_stdout_fd_filter_captures_only_stdout(obj: Path, work: Path) -> None:
    body = """
    os.write(1, b"to stdout\\n")
    os.write(2, b"to stderr\\n")
    """
    events, _, out = run_captured(obj, work / "cap", ["write:fd=stdout"], body)
    found = artifacts(events, "capture_file_write")
    assert out == "to stdout\n"
    assert [Path(a["artifact"]).read_bytes() for a in found] == [b"to stdout\n"]


def test_the_size_budget_stops_a_large_write_and_says_so(obj: Path, work: Path) -> None:
    watched = work / "watched"
    watched.mkdir()
    body = f"""
    with open({str(watched / "huge.bin")!r}, "wb", buffering=0) as f:
        for _ in range(16):
            f.write(b"A" * 65536)
    """
    events, manager, _ = run_captured(obj, work / "cap", [f"write={watched}/*", "artifact-limit:64kb"], body)
    (art,) = artifacts(events, "capture_file_write")
    assert art["size"] == 65536
    assert Path(art["artifact"]).stat().st_size == 65536
    assert art["incomplete"] is True
    assert art["not_captured"] == 15 * 65536
    assert "bytes not copied (over a size budget" in manager.summary()


def test_a_file_written_after_the_total_budget_is_spent_is_reported_with_nothing_saved(obj: Path, work: Path) -> None:
    """Once the total budget is spent, a new watched file gets no artifact file but still its
    event (no path, every byte counted), and the capture goes on."""
    watched = work / "watched"
    watched.mkdir()
    body = f"""
    with open({str(watched / "first.bin")!r}, "wb", buffering=0) as f:
        f.write(b"A" * 8192)
    with open({str(watched / "second.bin")!r}, "wb", buffering=0) as f:
        f.write(b"late")
    """
    events, manager, _ = run_captured(obj, work / "cap", [f"write={watched}/*", "total-limit:4kb"], body)
    found = {Path(a["pathname"]).name: a for a in artifacts(events, "capture_file_write")}
    assert sorted(found) == ["first.bin", "second.bin"]
    assert found["first.bin"]["size"] == 4096 and found["first.bin"]["not_captured"] == 4096
    late = found["second.bin"]
    assert late["artifact"] == "" and late["sha256"] == "" and late["size"] == 0
    assert late["incomplete"] is True and late["not_captured"] == 4
    assert manager.incomplete == 2


def test_the_total_budget_is_charged_only_for_bytes_copied(obj: Path, work: Path) -> None:
    watched = work / "watched"
    watched.mkdir()
    body = f"""
    for name in ("a.bin", "b.bin", "c.bin"):
        with open({str(watched)!r} + "/" + name, "wb", buffering=0) as f:
            f.write(b"A" * 49152)
    """
    events, manager, _ = run_captured(obj, work / "cap", [f"write={watched}/*", "total-limit:64kb"], body)
    found = {Path(a["pathname"]).name: a for a in artifacts(events, "capture_file_write")}
    assert [found[n]["size"] for n in ("a.bin", "b.bin", "c.bin")] == [49152, 16384, 0]
    assert manager._totals["copied"] == 65536  # b.bin's clamped 32 KiB and c.bin's bytes are not charged
    assert manager._totals["not_copied"] == 3 * 49152 - 65536


def test_chunks_the_full_ring_had_no_room_for_are_counted_and_the_artifact_marked_incomplete(
    obj: Path, work: Path
) -> None:
    watched = work / "watched"
    watched.mkdir()
    body = f"""
    block = os.urandom(256 << 10)
    with open({str(watched / "flood.bin")!r}, "wb", buffering=0) as f:
        for _ in range(16):
            f.write(block)
    """
    events, manager, _ = run_captured(
        obj,
        work / "cap",
        [f"write={watched}/*", "ring-size:64kb"],
        body,
        events=("write",),
        read_while_running=False,  # nobody reads the 64 KiB ring while 4 MiB are written
    )
    (art,) = artifacts(events, "capture_file_write")
    assert art["incomplete"] is True and art["lost_chunks"] > 0
    assert art["lost_chunks"] * (16 << 10) + Path(art["artifact"]).stat().st_blocks * 512 >= 4 << 20
    assert f"{art['lost_chunks']} chunks lost" in manager.summary()
    assert manager._totals["copied"] == (4 << 20) - art["lost_chunks"] * (16 << 10)  # lost chunks are not charged
    # the event stream has its own ring: every write of the flood is there
    writes = [e for e in events if e["eventName"] == "write" and e["args"][0]["value"] == 3]
    assert len(writes) == 16


# ---- read ------------------------------------------------------------------------------------


def test_reads_are_captured_with_path_and_fd_filters(obj: Path, work: Path) -> None:
    src = work / "src"
    src.mkdir()
    (src / "secret.txt").write_bytes(b"read me back")
    (work / "elsewhere.txt").write_bytes(b"not me")
    body = f"""
    open({str(src / "secret.txt")!r}, "rb").read()
    open({str(work / "elsewhere.txt")!r}, "rb").read()
    """
    events, _, _ = run_captured(obj, work / "cap", [f"read={src}/*"], body)
    found = artifacts(events, "capture_file_read")
    assert [(a["pathname"], Path(a["artifact"]).read_bytes()) for a in found] == [
        (str(src / "secret.txt"), b"read me back")
    ]
    assert Path(found[0]["artifact"]).name.startswith("read.dev-")


# ---- exec ------------------------------------------------------------------------------------


def test_an_executable_run_100_times_is_captured_once_and_again_after_it_changes(obj: Path, work: Path) -> None:
    exe = work / "copied-true"
    shutil.copy2("/bin/true", exe)
    original = exe.read_bytes()
    body = f"""
    import subprocess
    for _ in range(100):
        subprocess.run([{str(exe)!r}], check=True)
    time.sleep(1)   # the copy is made when the event is read (within about 100 ms)
    with open({str(exe)!r}, "ab") as f:
        f.write(b"changed")
    subprocess.run([{str(exe)!r}], check=True)
    """
    events, _, _ = run_captured(obj, work / "cap", ["exec"], body, events=("sched_process_exec",), timeout=120)
    execs = [e for e in events if e["eventName"] == "sched_process_exec" and e["args"][1]["value"] == str(exe)]
    assert len(execs) == 101
    found = [a for a in artifacts(events, "capture_exec") if a["pathname"] == str(exe)]
    assert [a["sha256"] for a in found] == [sha(original), sha(original + b"changed")]
    for a in found:
        assert Path(a["artifact"]).name.startswith("exec.") and Path(a["artifact"]).name.endswith(".copied-true")


def test_an_artifact_the_capture_directory_refuses_is_counted_and_tracing_goes_on(obj: Path, work: Path) -> None:
    """A link planted as out/host is not followed, and the failed copy stops neither the
    capture nor the event stream."""
    victim = work / "victim"
    victim.mkdir(mode=0o700)
    (work / "cap" / "out").mkdir(mode=0o700, parents=True)
    os.chmod(work / "cap", 0o700)
    (work / "cap" / "out" / "host").symlink_to(victim)
    body = """
    import subprocess
    subprocess.run(["/bin/true"], check=True)
    time.sleep(0.5)
    subprocess.run(["/bin/echo", "after"], check=True, stdout=subprocess.DEVNULL)
    """
    events, manager, _ = run_captured(obj, work / "cap", ["exec"], body, events=("sched_process_exec",))
    paths = [e["args"][1]["value"] for e in events if e["eventName"] == "sched_process_exec"]
    assert "/usr/bin/true" in paths and "/usr/bin/echo" in paths
    assert manager.exec_save_errors == 2
    assert "2 executables not saved" in manager.summary()
    assert list(victim.iterdir()) == []


def test_a_memfd_executable_is_captured(obj: Path, work: Path) -> None:
    body = """
    image = open("/bin/sleep", "rb").read()
    fd = os.memfd_create("fileless", 0)
    os.write(fd, image)
    os.execve(fd, ["sleep", "1"], {})
    """
    events, _, _ = run_captured(obj, work / "cap", ["exec"], body, events=("sched_process_exec",))
    found = [a for a in artifacts(events, "capture_exec") if a["pathname"].startswith("memfd:fileless")]
    assert len(found) == 1
    assert found[0]["sha256"] == sha(Path("/bin/sleep").read_bytes())
    assert Path(found[0]["artifact"]).name.endswith(".memfd_fileless")


# ---- mem, module -----------------------------------------------------------------------------


def test_a_region_turned_from_wx_to_x_is_captured_as_the_program_wrote_it(obj: Path, work: Path) -> None:
    body = """
    libc = ctypes.CDLL(None, use_errno=True)
    region = mmap.mmap(-1, 8192, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code = bytes(range(256)) * 32
    region.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert libc.mprotect(ctypes.c_void_p(addr), 8192, mmap.PROT_READ | mmap.PROT_EXEC) == 0
    print(addr)
    """
    events, _, out = run_captured(obj, work / "cap", ["mem"], body, events=("mem_prot_alert",))
    (art,) = artifacts(events, "capture_mem")
    assert art["address"] == int(out)
    assert Path(art["artifact"]).read_bytes() == bytes(range(256)) * 32
    assert Path(art["artifact"]).name.startswith("bin.pid-")


def test_the_buffer_given_to_init_module_is_captured(obj: Path, work: Path) -> None:
    body = """
    libc = ctypes.CDLL(None, use_errno=True)
    image = b"\\x7fELF" + bytes(range(256)) * 200
    buf = ctypes.create_string_buffer(image, len(image))
    libc.syscall(175, buf, ctypes.c_ulong(len(image)), b"")   # refused (no modules here, or no privilege)
    """
    events, _, _ = run_captured(obj, work / "cap", ["module"], body)
    (art,) = artifacts(events, "capture_module")
    image = b"\x7fELF" + bytes(range(256)) * 200
    assert Path(art["artifact"]).read_bytes() == image
    assert art["sha256"] == sha(image)
    assert Path(art["artifact"]).name.startswith("module.pid-") and art["artifact"].endswith("." + sha(image))


def test_a_dropped_executable_finding_gets_the_written_files_artifact(obj: Path, work: Path) -> None:
    from pytracee.collector.capture.evidence import CaptureEvidence
    from pytracee.engine.events import Event as EngineEvent
    from pytracee.signatures import DroppedExecutable

    watched = work / "watched"
    watched.mkdir()
    body = f"""
    image = open("/bin/true", "rb").read()
    with open({str(watched / "dropper")!r}, "wb", buffering=0) as f:
        f.write(image[:4096])
        f.write(image[4096:])
    """
    events, manager, _ = run_captured(obj, work / "cap", [f"write={watched}/*"], body, events=("magic_write",))
    (magic,) = [e for e in events if e["eventName"] == "magic_write"]
    (art,) = artifacts(events, "capture_file_write")
    plugin = CaptureEvidence()
    plugin.manager = manager
    finding = Finding({"path": str(watched / "dropper")}, EngineEvent(magic), DroppedExecutable.metadata)
    plugin.tracee_finding_enrich(finding)
    true_sha = sha(Path("/bin/true").read_bytes())
    assert finding.data == {
        "path": str(watched / "dropper"),
        "artifact_path": art["artifact"],
        "artifact_sha256": true_sha,
    }


def test_network_packets_are_saved_to_a_pcap_file(obj: Path, work: Path) -> None:
    token = os.urandom(8).hex().encode()
    body = f"""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(3):
        client.sendto({token!r} + b"-%d-" % i + b"x" * 300, server.getsockname())
        server.recv(1000)
    """
    events, manager, _ = run_captured(obj, work / "cap", ["network"], body)
    (art,) = artifacts(events, "capture_pcap")
    assert art["artifact"] == str(manager.out_dir / "pcap" / "single.pcap")
    data = Path(art["artifact"]).read_bytes()
    assert art["sha256"] == sha(data)
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B23C4D, 2, 4, 101)  # ns timestamps, raw IP
    ours = []
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, length = struct.unpack_from("<IIII", data, off)
        packet = data[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        if packet[:1] == b"\x45" and packet[9] == 17 and token in packet:
            ours.append((caplen, length, packet[28:]))
    # each datagram sent and received (egress, ingress): IP + UDP headers and 96 bytes of payload
    assert len(ours) == 6
    for caplen, length, payload in ours:
        assert (caplen, length) == (20 + 8 + 96, 20 + 8 + 16 + 3 + 300)
        assert payload.startswith(token + b"-") and len(payload) == 96


def test_a_pipe_read_on_stdin_is_captured(obj: Path, work: Path) -> None:
    body = """
    r, w = os.pipe()
    os.write(w, b"piped into stdin")
    os.dup2(r, 0)
    os.read(0, 100)
    open("/etc/hostname", "rb").read()   # a regular file: not captured
    """
    events, _, _ = run_captured(obj, work / "cap", ["read:type=pipe", "read:fd=stdin"], body)
    found = artifacts(events, "capture_file_read")
    assert [Path(a["artifact"]).read_bytes() for a in found] == [b"piped into stdin"]
    assert found[0]["pathname"] == ""  # pipes have no path (Tracee reports "" too)


def test_a_deleted_executable_is_captured(obj: Path, work: Path) -> None:
    exe = work / "vanishing"
    shutil.copy2("/bin/sleep", exe)
    body = f"""
    import subprocess
    proc = subprocess.Popen([{str(exe)!r}, "1"])
    time.sleep(0.05)
    os.unlink({str(exe)!r})
    proc.wait()
    """
    events, _, _ = run_captured(obj, work / "cap", ["exec"], body, events=("sched_process_exec",))
    found = [a for a in artifacts(events, "capture_exec") if a["pathname"] == str(exe)]
    assert [a["sha256"] for a in found] == [sha(Path("/bin/sleep").read_bytes())]
    assert not exe.exists()


def test_the_file_given_to_finit_module_is_captured(obj: Path, work: Path) -> None:
    image = b"\x7fELF" + os.urandom(50_000)
    (work / "module.ko").write_bytes(image)
    body = f"""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open({str(work / "module.ko")!r}, os.O_RDONLY)
    libc.syscall(313, fd, b"", 0)   # refused here; the image is copied while the fd is open
    time.sleep(1)
    """
    events, _, _ = run_captured(obj, work / "cap", ["module"], body)
    (art,) = artifacts(events, "capture_module")
    st = (work / "module.ko").stat()
    assert Path(art["artifact"]).read_bytes() == image
    assert Path(art["artifact"]).name == (
        f"module.dev-{os.major(st.st_dev) << 20 | os.minor(st.st_dev)}.inode-{st.st_ino}.pid-"
        f"{Path(art['artifact']).name.split('.pid-')[1].split('.')[0]}.{sha(image)}"
    )


def test_a_fifo_given_to_finit_module_never_stalls_the_collector(obj: Path, work: Path) -> None:
    fifo = work / "module.fifo"
    os.mkfifo(fifo)
    released = threading.Event()

    def release() -> None:  # a collector stuck opening the FIFO gets a writer, so the test can fail
        released.set()
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    watchdog = threading.Timer(20, release)
    watchdog.start()
    body = f"""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open({str(fifo)!r}, os.O_RDONLY | os.O_NONBLOCK)
    libc.syscall(313, fd, b"", 0)   # refused; the FIFO's fd must not be opened by the collector
    time.sleep(1)
    """
    try:
        events, _, _ = run_captured(obj, work / "cap", ["module"], body)
    finally:
        watchdog.cancel()
    assert not released.is_set()
    (art,) = artifacts(events, "capture_module")
    assert art["incomplete"] and art["not_captured"] >= 1 and art["size"] == 0


def test_a_region_larger_than_the_artifact_limit_is_reported_once(obj: Path, work: Path) -> None:
    body = """
    libc = ctypes.CDLL(None, use_errno=True)
    size = 256 * 1024
    region = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    region.write(bytes(range(256)) * (size // 256))
    addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert libc.mprotect(ctypes.c_void_p(addr), size, mmap.PROT_READ | mmap.PROT_EXEC) == 0
    time.sleep(1.5)
    """
    events, _, _ = run_captured(obj, work / "cap", ["mem", "artifact-limit:64kb"], body, events=("mem_prot_alert",))
    (art,) = artifacts(events, "capture_mem")
    assert art["size"] == 64 * 1024 and art["incomplete"] and art["not_captured"] == 192 * 1024
    assert Path(art["artifact"]).read_bytes() == bytes(range(256)) * 256


def test_packets_past_the_total_limit_are_not_copied_by_the_kernel(obj: Path, work: Path) -> None:
    body = """
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(200):
        client.sendto(b"x" * 1000, server.getsockname())
        server.recv(2000)
    """
    _, manager, _ = run_captured(obj, work / "cap", ["network", "pcap-snaplen:max", "total-limit:64kb"], body)
    totals = manager._totals  # what the kernel counted
    # 400 packets of 1028 bytes seen (egress, ingress); copying stops at the budget (one packet over at most)
    assert totals["copied"] <= 64 * 1024 + 16 * 1024 + 1028
    assert totals["not_copied"] >= 400 * 1028 - totals["copied"]
