"""32-bit (ia32) syscalls: the number table, and live, a 64-bit program making them with
``int $0x80`` (tests/programs/compat_syscalls.c): each comes out as its x86_64 twin's event,
with its arguments and ``contextFlags.isCompat``, and so do the events derived from it.

The live test needs root, bpf(), gcc and a kernel that runs ia32 syscalls (IA32_EMULATION);
it is skipped with the reason elsewhere (see collector_support.py).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from collector_support import (
    REPO,
    args,
    collect,
    named,
    release,
    spawn_waiting,
    start_collector,
)
from pytracee.collector import compat, wire
from pytracee.collector.collector import KernelFilters
from pytracee.engine.catalogue import SYSCALLS

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm")
O_WRONLY, O_CREAT, O_TRUNC, O_LARGEFILE = 0o1, 0o100, 0o1000, 0o100000
PROT_RWX, MAP_PRIVATE_ANONYMOUS = 7, 0x22


# ---- the number table -----------------------------------------------------------------


def _unistd(name: str) -> dict[str, int]:
    path = UNISTD / name
    if not path.exists():
        pytest.skip(f"{path} is not installed (linux-libc-dev)")
    return {m[1]: int(m[2]) for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", path.read_text())}


def test_table_matches_the_kernel_headers() -> None:
    nr32, nr64 = _unistd("unistd_32.h"), _unistd("unistd_64.h")
    for name, ia32 in compat.IA32_SYSCALLS.items():
        assert nr32[compat.IA32_NAMES.get(name, name)] == ia32, name
        assert nr64[name] == SYSCALLS[name], name
    # the 16-bit-id and old-mmap twins are the ones left out
    assert nr32["setuid"] == 23 and nr32["mmap"] == 90 and nr32["socketcall"] == 102
    assert "accept" not in nr32


def test_table_covers_every_syscall_the_collector_uses() -> None:
    used = {name for name, spec in wire.EVENTS.items() if spec.syscall}
    used |= {sc for spec in wire.EVENTS.values() for sc, _ in spec.needs}
    missing = used - set(compat.IA32_SYSCALLS)
    assert missing == {"accept"}  # only through socketcall, left out
    assert any(key.startswith("accept") for key in compat.LEFT_OUT)
    assert set(compat.NAME_ONLY) <= set(compat.IA32_SYSCALLS)
    assert not set(compat.NAME_ONLY) & used  # never traced as events


def test_table_values() -> None:
    table = compat.ia32_to_x86_64()
    assert (table[295], table[5], table[11], table[192], table[181], table[213]) == (257, 2, 59, 9, 18, 105)
    assert 90 not in table and 102 not in table and 23 not in table
    assert len(table) == len(compat.IA32_SYSCALLS)  # one x86_64 twin per ia32 number
    entries = dict(compat.kernel_entries())
    assert entries[295] == 0x80000000 | 257
    assert entries[120] == 0x80000000 | compat.COMPAT_NAME_ONLY | SYSCALLS["clone"]
    assert all(ia32 < 512 and value & 0xFFFF == table[ia32] for ia32, value in entries.items())  # MAX_SYSCALLS
    maps_h = (REPO / "bpf" / "maps.h").read_text()
    assert re.search(r"#define COMPAT_NAME_ONLY\s+0x40000000u", maps_h)
    assert re.search(r"#define COMPAT_VALID\s+0x80000000u", maps_h)
    assert re.search(r"#define HDR_COMPAT\s+0x4\b", maps_h)


# ---- live -------------------------------------------------------------------------------

EVENTS = [
    "openat", "open", "write", "pwrite64", "unlinkat", "mmap", "kill", "connect", "execve",
    "security_file_open", "magic_write", "mem_prot_alert", "security_socket_connect",
]  # fmt: skip


def _build(tmp_path: Path) -> Path:
    """The test program, built and run once untraced; skips where ia32 syscalls do not run."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    program = tmp_path / "compat_syscalls"
    source = REPO / "tests" / "programs" / "compat_syscalls.c"
    subprocess.run(["gcc", "-O2", "-no-pie", "-o", str(program), str(source)], check=True)
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "read-me").write_text("x\n")
    run = subprocess.run([str(program), str(probe)], capture_output=True, text=True, timeout=30, check=False)
    if run.returncode != 0 or _results(run.stdout).get("openat", -38) < 0:
        pytest.skip(f"this kernel does not run ia32 syscalls (IA32_EMULATION): {run.returncode} {run.stdout!r}")
    return program


def _results(out: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", out)}


def _one(events: list[dict[str, Any]], name: str, compat_flag: bool, **where: Any) -> dict[str, Any]:
    found = [e for e in named(events, name, **where) if e["contextFlags"]["isCompat"] is compat_flag]
    assert len(found) == 1, (name, where, found)
    return found[0]


def test_ia32_syscalls_are_reported_as_their_x86_64_twins(bpf_object: Path, tmp_path: Path) -> None:
    program = _build(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    (work / "read-me").write_text("x\n")
    child = spawn_waiting(f"os.execv({str(program)!r}, ['compat_syscalls', {str(work)!r}])")
    collector = start_collector(bpf_object, EVENTS, filters=KernelFilters(pids={child.pid}))
    try:
        release(child)
        assert child.stdout is not None
        out = _results(child.stdout.read())
        got = collect(collector, lambda evs: bool(named(evs, "execve", pathname="/bin/true")))
    finally:
        collector.stop()
    read_me, made, no_socket = str(work / "read-me"), str(work / "made"), str(work / "no-socket")
    assert out["openat"] >= 0 and out["open"] >= 0 and out["unlinkat"] == 0, out
    compat_events = [e for e in got if e["contextFlags"]["isCompat"]]
    assert compat_events and all(e["hostProcessId"] == child.pid for e in compat_events)

    # openat (ia32 295): dirfd, pathname, flags, mode from ebx, ecx, edx, esi
    openat = _one(got, "openat", True, pathname=read_me)
    assert (openat["eventId"], openat["syscall"], openat["returnValue"]) == ("257", "openat", out["openat"])
    assert args(openat) == {"dirfd": -100, "pathname": read_me, "flags": 0, "mode": 0}
    sfo = _one(got, "security_file_open", True, syscall_pathname=read_me)
    assert (sfo["eventId"], sfo["syscall"], args(sfo)["pathname"]) == ("732", "openat", read_me)
    # the same file opened with the x86_64 syscall: not compat
    native = _one(got, "openat", False, pathname=read_me)
    assert native["returnValue"] == out["openat64"] and native["syscall"] == "openat"
    assert _one(got, "security_file_open", False, syscall_pathname=read_me)["syscall"] == "openat"

    # open (ia32 5): pathname, flags, mode from ebx, ecx, edx
    open_ = _one(got, "open", True, pathname=made)
    assert (open_["eventId"], open_["syscall"], open_["returnValue"]) == ("2", "open", out["open"])
    assert args(open_) == {"pathname": made, "flags": O_WRONLY | O_CREAT | O_TRUNC | O_LARGEFILE, "mode": 0o640}
    assert _one(got, "security_file_open", True, syscall_pathname=made)["syscall"] == "open"

    # write (ia32 4) of an ELF magic at offset 0, and its magic_write
    write = _one(got, "write", True, fd=out["open"])
    assert (write["eventId"], write["returnValue"], args(write)["count"]) == ("1", 4, 4)
    magic = _one(got, "magic_write", True, pathname=made)
    assert magic["syscall"] == "write" and base64.b64decode(args(magic)["bytes"]) == b"\x7fELF"
    # pwrite64 (ia32 181): the offset from its two 32-bit halves; not at offset 0, no magic_write
    pwrite = _one(got, "pwrite64", True, fd=out["open"])
    assert (pwrite["eventId"], pwrite["returnValue"], args(pwrite)["offset"]) == ("18", 4, 0x100000010)
    assert len(named(got, "magic_write")) == 1

    unlinkat = _one(got, "unlinkat", True, pathname=made)
    assert (unlinkat["eventId"], unlinkat["returnValue"], args(unlinkat)) == (
        "263", 0, {"dirfd": -100, "pathname": made, "flags": 0},
    )  # fmt: skip

    # mmap2 (ia32 192) as mmap, its offset in bytes; old_mmap (ia32 90) is not traced
    (mmap,) = [e for e in named(got, "mmap") if e["contextFlags"]["isCompat"]]
    assert (mmap["eventId"], mmap["syscall"], mmap["returnValue"]) == ("9", "mmap", out["mmap2"])
    assert args(mmap) == {
        "addr": 0, "length": 4096, "prot": PROT_RWX, "flags": MAP_PRIVATE_ANONYMOUS, "fd": -1, "off": 3 * 4096,
    }  # fmt: skip
    (alert,) = [e for e in named(got, "mem_prot_alert") if e["contextFlags"]["isCompat"]]
    assert alert["syscall"] == "mmap"
    assert (args(alert)["alert"], args(alert)["addr"], args(alert)["prot"]) == (1, out["mmap2"], PROT_RWX)
    assert out["old_mmap"] > 0 and not [e for e in named(got, "mmap") if e["returnValue"] == out["old_mmap"]]

    # kill (ia32 37): pid, sig from ebx, ecx
    kill = _one(got, "kill", True)
    assert (kill["eventId"], kill["returnValue"], args(kill)) == ("62", 0, {"pid": out["pid"], "sig": 0})

    # connect (ia32 362) and security_socket_connect
    unix = {"sa_family": "AF_UNIX", "sun_path": no_socket}
    connect = _one(got, "connect", True, sockfd=out["socket"])
    assert (connect["eventId"], connect["returnValue"], args(connect)["addr"]) == ("42", out["connect"], unix)
    ssc = _one(got, "security_socket_connect", True, sockfd=out["socket"])
    assert ssc["syscall"] == "connect" and args(ssc) == {"sockfd": out["socket"], "type": 1, "remote_addr": unix}

    # execve (ia32 11): argv and envp are arrays of 32-bit pointers
    execve = _one(got, "execve", True, pathname="/bin/true")
    assert (execve["eventId"], execve["syscall"], execve["returnValue"]) == ("59", "execve", 0)
    assert (args(execve)["argv"], args(execve)["envp"]) == (["true", "compat-arg"], [])
    # everything the 64-bit loader and Python did before: not compat
    assert [e for e in got if not e["contextFlags"]["isCompat"] and e["eventName"] == "mmap"]
