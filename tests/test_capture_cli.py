"""``tracee --capture`` as a user runs it: Tracee's option syntax, ``--capture help``, the
artifact events in ``-o json``, and findings that carry their artifact's path and sha256."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_support import Tracee, build_object, require_bpf
from pytracee.collector.capture import CaptureOptionError, parse_capture
from pytracee.collector.capture.options import DEFAULT_ARTIFACT_LIMIT
from pytracee.collector.cli import tracee as tracee_cli


def test_capture_help_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert tracee_cli.main(["--capture", "help"]) == 0
    out = capsys.readouterr().out
    for option in ("write[=/path/prefix*]", "read[=/path/prefix*]", "exec", "mem", "module", "dir:", "clear-dir"):
        assert option in out
    assert "write:type=socket --capture write:fd=stdout" in out


def test_options_in_tracees_syntax() -> None:
    opts = parse_capture(
        [
            "write=/usr/bin/*",
            "artifact:write:path=/etc/*",
            "write:type=pipe",
            "write:type=elf",
            "write:fd=stdout",
            "read:fd=stdin",
            "exec",
            "artifact:mem",
            "module",
            "dir:/var/forensics",
            "clear-dir",
        ]
    )
    assert opts.write.enabled and opts.write.paths == ["/usr/bin/", "/etc/"]
    assert opts.write.types == {"pipe", "elf"} and opts.write.fds == {1}
    assert opts.read.enabled and opts.read.fds == {0} and not opts.read.paths
    assert opts.exec and opts.mem and opts.module and opts.clear_dir
    assert opts.out_dir == Path("/var/forensics/out")
    assert opts.artifact_limit == DEFAULT_ARTIFACT_LIMIT
    assert parse_capture(["artifact-limit:16mb", "total-limit:2gb"]).total_limit == 2 << 30
    assert parse_capture([]).out_dir == Path("/tmp/tracee/out")  # Tracee's default


def test_network_options_in_tracees_syntax() -> None:
    assert parse_capture(["network"]).network and parse_capture(["net"]).snaplen == 96
    assert parse_capture(["network", "pcap:single", "pcap-options:none"]).network
    assert parse_capture(["network", "pcap-snaplen:headers"]).snaplen == 0
    assert parse_capture(["network", "pcap-snaplen:max"]).snaplen == 65535
    assert parse_capture(["network", "pcap-snaplen:1kb"]).snaplen == 1024
    assert parse_capture(["network", "pcap-snaplen:256b"]).snaplen == 256


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("write=/tmp", "must end with *"),
        ("write=*", "empty"),
        ("write=/" + "x" * 50 + "*", "at most 50 characters"),
        ("write:type=fifo", "unknown file type"),
        ("read:fd=3", "unknown fd"),
        ("write:owner=root", "unknown filter"),
        ("dir:", "cannot be empty"),
        ("artifact-limit:lots", "not a size"),
        ("exe", "unknown option"),
        ("pcap:process,command", "only pcap:single"),
        ("pcap-options:filtered", "only pcap-options:none"),
        ("pcap-snaplen:lots", "default, headers, max"),
    ],
)
def test_bad_options_are_refused_with_the_reason(option: str, message: str) -> None:
    with pytest.raises(CaptureOptionError, match=message):
        parse_capture([option])


def test_more_than_three_path_filters_are_refused() -> None:
    with pytest.raises(CaptureOptionError, match="at most 3 path filters"):
        parse_capture([f"write=/p{i}/*" for i in range(4)])


def test_a_bad_capture_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert tracee_cli.main(["-e", "openat", "--capture", "write:type=fifo"]) == 2
    assert "unknown file type" in capsys.readouterr().err


# ---- live --------------------------------------------------------------------------------------


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="capt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


WORKLOAD = """
import ctypes, mmap, os, subprocess, sys
open("/proc/self/comm", "w").write("capt-evidence")
libc = ctypes.CDLL(None, use_errno=True)
region = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
region.write(b"\\xcc" * 4096)
addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
assert libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ | mmap.PROT_EXEC) == 0
pid = os.fork()
if pid == 0:
    fd = os.memfd_create("capt-fileless", 0)
    os.write(fd, open("/bin/sleep", "rb").read())
    os.execve(fd, ["sleep", "1"], {})
os.waitpid(pid, 0)
"""


def test_findings_carry_their_artifacts_path_and_sha256(work: Path) -> None:
    require_bpf()
    build_object()
    capdir = work / "cap"
    tracee = Tracee(
        "-o", "json", "--output-template", "rawjson", "--rules", "TRC-104,TRC-105",
        "-s", "comm=capt-evidence", "-s", "follow",
        "--capture", "exec", "--capture", "mem", "--capture", f"dir:{capdir}",
    )  # fmt: skip
    subprocess.run([sys.executable, "-c", WORKLOAD], check=True, timeout=30)
    status, lines, err = tracee.stop()
    assert status == 0, err
    findings = {f["SigMetadata"]["ID"]: f for f in lines if "SigMetadata" in f}
    events = [e for e in lines if "eventName" in e]
    assert {"TRC-104", "TRC-105"} <= set(findings), err

    mem = findings["TRC-104"]["Data"]
    assert Path(mem["artifact_path"]).read_bytes() == b"\xcc" * 4096
    assert mem["artifact_sha256"] == hashlib.sha256(b"\xcc" * 4096).hexdigest()
    assert Path(mem["artifact_path"]).parent == capdir / "out" / "host"

    fileless = findings["TRC-105"]["Data"]
    sleep_sha = hashlib.sha256(Path("/bin/sleep").read_bytes()).hexdigest()
    assert fileless["artifact_sha256"] == sleep_sha
    assert hashlib.sha256(Path(fileless["artifact_path"]).read_bytes()).hexdigest() == sleep_sha

    # every artifact is in the event stream too, with the process that caused it
    reported = {e["eventName"]: e for e in events if e["eventName"].startswith("capture_")}
    assert {"capture_mem", "capture_exec"} <= set(reported)
    assert reported["capture_mem"]["processName"] == "capt-evidence"
    args = {a["name"]: a["value"] for a in reported["capture_mem"]["args"]}
    assert args["artifact"] == mem["artifact_path"] and args["sha256"] == mem["artifact_sha256"]
    assert "capture:" in err and "artifacts reported" in err
