"""mem_prot_alert from mprotect on this kernel: alerts 2, 3 and 4 as Tracee raises them.

Tracee raises them from the security_file_mprotect LSM hook, which the kernel calls once
for each VMA of the range, with the VMA's flags (``prev_prot``: ``vma->vm_flags``) and the
requested protection (``prot``: reqprot); its conditions, in order, a later one winning:

* 2 "Protection changed to Executable!": the VMA was not executable, X is requested;
* 3 "Protection changed from E to W+E!": it was executable and not writable, W+X is requested;
* 4 "Protection changed from W+E to E!": it was writable, X without W is requested.

The collector finds the same VMAs with bpf_find_vma at the enter of mprotect. The children
read their own /proc/self/smaps just before each call, so every ``prev_prot`` is checked
against the flags the kernel reported. Without bpf_find_vma (no BTF, non-CO-RE objects)
only alert 4 for regions mapped or protected W+X before remains.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_support import (
    Tracee,
    args,
    collect,
    kernel_dev,
    named,
    run_child,
    start_collector,
)
from pytracee.collector import loader
from pytracee.collector.collector import Collector, KernelFilters
from pytracee.collector.libbpf import BpfObject, LibbpfError

PROT_R, PROT_W, PROT_X = 1, 2, 4
RW, RX, RWX = PROT_R | PROT_W, PROT_R | PROT_X, PROT_R | PROT_W | PROT_X
PAGE = 4096
EACCES, EINVAL, ENOMEM = 13, 22, 12

#: /proc/<pid>/smaps VmFlags mnemonics of the vm_flags bits below 32 (x86_64), for the
#: expected prev_prot; bits of mnemonics not listed here are not compared.
VM_FLAG_BITS = {
    "rd": 0x1,
    "wr": 0x2,
    "ex": 0x4,
    "sh": 0x8,
    "mr": 0x10,
    "mw": 0x20,
    "me": 0x40,
    "ms": 0x80,
    "gd": 0x100,
    "pf": 0x400,
    "lo": 0x2000,
    "io": 0x4000,
    "sr": 0x8000,
    "rr": 0x10000,
    "dc": 0x20000,
    "de": 0x40000,
    "ac": 0x100000,
    "nr": 0x200000,
    "ht": 0x400000,
    "dd": 0x4000000,
    "sd": 0x8000000,
    "hg": 0x20000000,
    "nh": 0x40000000,
    "mg": 0x80000000,
}
KNOWN_BITS = sum(VM_FLAG_BITS.values())

#: The children's helpers: mprotect() records the VmFlags of the VMAs in the range first.
PRELUDE = """
import json
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
MAP_SHARED, MAP_PRIVATE, MAP_ANON = 0x1, 0x2, 0x20
calls = []

def mmap(length, prot, flags=MAP_PRIVATE | MAP_ANON, fd=-1):
    addr = libc.mmap(None, length, prot, flags, fd, 0)
    assert addr not in (None, 2**64 - 1), os.strerror(ctypes.get_errno())
    return addr

def vmas(addr, length):
    '''VmFlags of the VMAs that [addr, addr + length) meets, in address order.'''
    found, inside = [], False
    for line in open('/proc/self/smaps'):
        head = line.split(None, 1)[0]
        if '-' in head and ':' not in head:
            lo, hi = (int(x, 16) for x in head.split('-'))
            inside = lo < addr + max(length, 1) and hi > addr
        elif line.startswith('VmFlags:') and inside:
            found.append(line.split()[1:])
    return found

def mprotect(addr, length, prot, errno=0):
    before = vmas(addr, length)
    rc = libc.mprotect(addr, length, prot)
    err = ctypes.get_errno() if rc else 0
    assert err == errno, (hex(addr), length, prot, os.strerror(err))
    calls.append({'addr': addr, 'len': length, 'prot': prot, 'vmas': before})
"""
EPILOGUE = "\nprint(json.dumps(calls))\n"


def vm_flags(mnemonics: list[str]) -> int:
    return sum(VM_FLAG_BITS.get(m, 0) for m in mnemonics)


#: The children of the tests that trace with the default object (one collector for them all).
SHARED_COMMS = {"trcx_mprot_anon", "trcx_mprot_file", "trcx_mprot_vmas", "trcx_mprot_deny", "trcx_mprot_mdwe"}


@pytest.fixture(scope="module")
def shared_collector(bpf_object: Path) -> Iterator[Collector]:
    """A collector of mem_prot_alert for the children of SHARED_COMMS, started once for the
    module (each test reads only its own child's alerts, by comm)."""
    collector = start_collector(bpf_object, ["mem_prot_alert"], filters=KernelFilters(comms=SHARED_COMMS))
    try:
        yield collector
    finally:
        collector.stop()


def run(
    obj: Path | Collector, comm: str, body: str, until: int, **kwargs: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Collector]:
    """Trace mem_prot_alert while a child runs ``body``: its recorded calls, the mprotect
    alerts (in order) once ``until`` of them arrived (and any late ones), the collector.
    ``obj`` is the object to start a collector of ``comm`` with, or a running collector."""
    if isinstance(obj, Collector):
        assert comm in SHARED_COMMS, comm
        collector = obj
    else:
        collector = start_collector(obj, ["mem_prot_alert"], filters=KernelFilters(comms={comm}), **kwargs)
    try:
        proc = run_child(PRELUDE + body + EPILOGUE, comm=comm)
        got = collect(collector, lambda evs: len(_mprotect_alerts(evs, comm)) >= until)
        got += collect(collector, timeout=0.5)
    finally:
        if collector is not obj:
            collector.stop()
    return json.loads(proc.stdout.splitlines()[-1]), _mprotect_alerts(got, comm), collector


def _mprotect_alerts(events: list[dict[str, Any]], comm: str) -> list[dict[str, Any]]:
    return [
        e
        for e in named(events, "mem_prot_alert")
        if e["syscall"] in ("mprotect", "pkey_mprotect") and e["processName"] == comm
    ]


def check(alert: dict[str, Any], number: int, call: dict[str, Any], vma: int = 0) -> dict[str, Any]:
    """``alert`` is alert ``number`` for ``call`` (the syscall's addr, len, prot) on its
    ``vma``-th VMA, whose flags are prev_prot."""
    a = args(alert)
    assert (a["alert"], a["addr"], a["len"], a["prot"]) == (number, call["addr"], call["len"], call["prot"]), a
    mnemonics = call["vmas"][vma]
    assert a["prev_prot"] & 0xFFFFFFFF & KNOWN_BITS == vm_flags(mnemonics), (hex(a["prev_prot"]), mnemonics)
    assert alert["eventId"] == "724" and alert["syscall"] == "mprotect"
    return a


def anonymous(a: dict[str, Any]) -> None:
    assert (a["pathname"], a["dev"], a["inode"], a["ctime"]) == ("", 0, 0, 0), a


def test_find_vma_path_is_used_here(bpf_object: Path) -> None:
    """A kernel with bpf_find_vma (5.17+) and BTF loads the program and the loader installs it."""
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    if release < (5, 17):
        pytest.skip(f"bpf_find_vma needs Linux 5.17 (this is {os.uname().release})")
    collector = start_collector(bpf_object, ["mem_prot_alert"], filters=KernelFilters(comms={"trcx_none"}))
    collector.stop()
    assert collector.tail_programs == ["enter_mprotect_vma"] and not collector.disabled_programs
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_none"}))
    collector.stop()
    assert collector.tail_programs == []  # not loaded when mem_prot_alert is not traced


def test_alerts_2_3_4_on_anonymous_memory_and_benign_changes(shared_collector: Collector) -> None:
    calls, alerts, _ = run(
        shared_collector,
        "trcx_mprot_anon",
        f"""
a = mmap(8192, {RW})
mprotect(a, 8192, {RX})    # 0: RW -> RX: alert 4
mprotect(a, 8192, {RWX})   # 1: RX -> RWX: alert 3
mprotect(a, 8192, {PROT_R})     # 2: RWX -> R: nothing
mprotect(a, 8192, {RX})    # 3: R -> RX: alert 2
mprotect(a, 8192, {PROT_R})     # 4: RX -> R: nothing
mprotect(a, 8192, {RW})    # 5: R -> RW: nothing
mprotect(a, 8192, {PROT_R})     # 6: RW -> R: nothing
mprotect(a, 8192, {PROT_R | PROT_W | PROT_X}) # 7: R -> RWX: alert 2 (not executable before)
mprotect(a, 8192, {PROT_X})     # 8: RWX -> X: alert 4 (writable before)
""",
        until=5,
    )
    assert [args(e)["alert"] for e in alerts] == [4, 3, 2, 2, 4]
    for alert, (number, step) in zip(alerts, [(4, 0), (3, 1), (2, 3), (2, 7), (4, 8)], strict=True):
        anonymous(check(alert, number, calls[step]))
    # the flags are the kernel's: VM_MAY* and VM_ACCOUNT beside the protection
    assert args(alerts[0])["prev_prot"] & 0xFF == 0x73  # rd wr mr mw me


def test_alerts_on_file_mappings_carry_the_file(shared_collector: Collector, tmp_path: Path) -> None:
    path = tmp_path / "code.bin"
    path.write_bytes(b"\x90" * 8192)
    calls, alerts, _ = run(
        shared_collector,
        "trcx_mprot_file",
        f"""
fd = os.open({str(path)!r}, os.O_RDWR)
m = mmap(8192, {PROT_R}, MAP_PRIVATE, fd)
mprotect(m, 8192, {RX})    # 0: alert 2
mprotect(m, 8192, {RWX})   # 1: alert 3
mprotect(m, 8192, {RX})    # 2: alert 4
s = mmap(4096, {RW}, MAP_SHARED, fd)
mprotect(s, 4096, {PROT_R})     # 3: nothing
mprotect(s, 4096, {RX})    # 4: alert 2 (a shared mapping: sh ms in prev_prot)
""",
        until=4,
    )
    st = path.stat()
    assert [args(e)["alert"] for e in alerts] == [2, 3, 4, 2]
    for alert, (number, step) in zip(alerts, [(2, 0), (3, 1), (4, 2), (2, 4)], strict=True):
        a = check(alert, number, calls[step])
        assert (a["pathname"], a["dev"], a["inode"], a["ctime"]) == (
            str(path),
            kernel_dev(st.st_dev),
            st.st_ino,
            st.st_ctime_ns,
        )
    assert args(alerts[3])["prev_prot"] & 0x88 == 0x88  # VM_SHARED | VM_MAYSHARE


def test_one_alert_per_vma_of_the_range(shared_collector: Collector) -> None:
    """The hook runs for each VMA of the range (each with its own flags, the syscall's addr
    and len), up to a hole, where mprotect fails after changing the VMAs before it."""
    calls, alerts, _ = run(
        shared_collector,
        "trcx_mprot_vmas",
        f"""
a = mmap(3 * {PAGE}, {RW})
mprotect(a + {PAGE}, {PAGE}, {PROT_R})   # 0: [RW][R][RW], nothing
mprotect(a, 3 * {PAGE}, {RX})          # 1: alerts 4, 2, 4 (one per VMA)
b = mmap(3 * {PAGE}, {RW})
libc.munmap(b + {PAGE}, {PAGE})           #    [RW] hole [RW]
mprotect(b, 3 * {PAGE}, {RX}, errno={ENOMEM})  # 2: alert 4 for the first VMA, then ENOMEM
""",
        until=4,
    )
    assert len(calls[1]["vmas"]) == 3 and len(calls[2]["vmas"]) == 2
    assert [args(e)["alert"] for e in alerts] == [4, 2, 4, 4]
    for alert, (number, step, vma) in zip(alerts, [(4, 1, 0), (2, 1, 1), (4, 1, 2), (4, 2, 0)], strict=True):
        anonymous(check(alert, number, calls[step], vma))


def test_mprotects_the_kernel_refuses_before_the_hook_raise_nothing(
    shared_collector: Collector, tmp_path: Path
) -> None:
    path = tmp_path / "ro.bin"
    path.write_bytes(b"\0" * PAGE)
    calls, alerts, _ = run(
        shared_collector,
        "trcx_mprot_deny",
        f"""
a = mmap(2 * {PAGE}, {RW})
mprotect(a + 1, {PAGE}, {RX}, errno={EINVAL})     # 0: unaligned
mprotect(a, 0, {RX})                            # 1: nothing to do
mprotect(a, {PAGE}, {RX} | 0x100, errno={EINVAL})  # 2: an unknown protection bit
gap = mmap({PAGE}, {RW}); libc.munmap(gap, {PAGE})
mprotect(gap, {PAGE}, {RX}, errno={ENOMEM})       # 3: nothing mapped there
fd = os.open({str(path)!r}, os.O_RDONLY)
s = mmap({PAGE}, {PROT_R}, MAP_SHARED, fd)
mprotect(s, {PAGE}, {RWX}, errno={EACCES})        # 4: no VM_MAYWRITE (read-only shared file)
mprotect(a, {PAGE}, {RX})                       # 5: alert 4, the last call
""",
        until=1,
    )
    assert [args(e)["alert"] for e in alerts] == [4]
    anonymous(check(alerts[0], 4, calls[5]))


def test_mdwe_refusals_raise_nothing(shared_collector: Collector) -> None:
    """prctl(PR_SET_MDWE): the kernel refuses W+X and newly executable memory before the hook."""
    calls, alerts, _ = run(
        shared_collector,
        "trcx_mprot_mdwe",
        f"""
old = mmap({PAGE}, {RWX})                        # made before MDWE: alert 1 (mmap)
a = mmap({PAGE}, {RW})
if libc.prctl(65, 1, 0, 0, 0) != 0:             # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print(json.dumps('no MDWE: ' + os.strerror(ctypes.get_errno())))
    sys.exit(0)
mprotect(a, {PAGE}, {RX}, errno={EACCES})        # 0: newly executable
mprotect(a, {PAGE}, {RWX}, errno={EACCES})       # 1: W+X
mprotect(old, {PAGE}, {RX})                     # 2: allowed (executable before): alert 4
""",
        until=1,
    )
    if isinstance(calls, str):
        pytest.skip(f"this kernel has no prctl(PR_SET_MDWE): {calls}")
    assert [args(e)["alert"] for e in alerts] == [4]
    anonymous(check(alerts[0], 4, calls[2]))


def _non_core_object(tmp_path: Path, source: Path) -> Path:
    out = tmp_path / "noncore" / "tracee.bpf.o"
    proc = subprocess.run(
        ["make", "-C", str(source.parent), f"OUT={out}", "CORE=0"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return out


def _refuse_the_vma_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load as a kernel before 5.13 would: it refuses the program with the callback."""
    real_load = BpfObject.load

    def load(self: BpfObject) -> None:
        if self.programs()["enter_mprotect_vma"].autoload:
            logging.getLogger("pytracee.libbpf").warning("libbpf: prog 'enter_mprotect_vma': failed to load: -22")
            raise LibbpfError(EINVAL, "load BPF object: Invalid argument")
        real_load(self)

    monkeypatch.setattr(BpfObject, "load", load)


@pytest.mark.parametrize("where", ["no kernel BTF", "non-CO-RE object", "program refused"])
def test_without_find_vma_only_alert_4_of_wx_regions_remains(
    bpf_object: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Kernels without bpf_find_vma, or without BTF, and non-CO-RE objects keep the
    emulation from wx_regions: alert 4 (prev_prot: the protection asked for then) for a
    region mapped or protected W+X before, and nothing else. Where the kernel refuses the
    bpf_find_vma program, the loader goes on without it and its slot stays empty."""
    obj = bpf_object
    if where == "no kernel BTF":
        monkeypatch.setattr(loader, "KERNEL_BTF", Path("/nonexistent/vmlinux"))
    elif where == "program refused":
        _refuse_the_vma_program(monkeypatch)
    else:
        obj = _non_core_object(tmp_path, bpf_object)
    calls, alerts, collector = run(
        obj,
        "trcx_mprot_old",
        f"""
a = mmap(8192, {RW})
mprotect(a, 8192, {RX})    # 0: nothing (no W+X before)
mprotect(a, 8192, {PROT_R})     # 1: nothing (no alert 2 here)
w = mmap(8192, {RWX})      #    alert 1 (mmap)
mprotect(w, 8192, {RX})    # 2: alert 4
""",
        until=1,
    )
    assert collector.tail_programs == []
    assert collector.disabled_programs == (["enter_mprotect_vma"] if where == "program refused" else [])
    assert [args(e)["alert"] for e in alerts] == [4]
    a = args(alerts[0])
    assert (a["addr"], a["len"], a["prot"], a["prev_prot"]) == (calls[2]["addr"], 8192, RX, RWX)
    anonymous(a)


def test_trc_104_fires_on_a_jit_style_write_then_execute(bpf_object: Path, tmp_path: Path) -> None:
    """The usual JIT pattern (write code into RW memory, then make it RX) is alert 4, which
    the dynamic code loading signature reports."""
    if os.geteuid() != 0 or not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("live tracing needs root and kernel BTF")
    jit = tmp_path / "trcx_jit.py"
    jit.write_text(
        "import ctypes\n"
        "open('/proc/self/comm', 'w').write('trcx_jit')\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
        "libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n"
        "code = libc.mmap(None, 4096, 3, 0x22, -1, 0)\n"
        "ctypes.memmove(code, b'\\xb8\\x2a\\x00\\x00\\x00\\xc3', 6)\n"  # mov eax, 42; ret
        "assert libc.mprotect(code, 4096, 5) == 0\n"
        "assert ctypes.CFUNCTYPE(ctypes.c_int)(code)() == 42\n"
    )
    tracee = Tracee("--output-template", "rawjson", "--rules", "TRC-104", "-s", "comm=trcx_jit")
    subprocess.run([sys.executable, str(jit)], check=True)
    status, findings, err = tracee.stop()
    assert status == 0, err
    fired = [f["Context"] for f in findings if f["SigMetadata"]["ID"] == "TRC-104"]
    assert fired, (findings, err)
    assert all(c["processName"] == "trcx_jit" and c["eventName"] == "mem_prot_alert" for c in fired)
    assert {a["name"]: a["value"] for a in fired[0]["args"]}["alert"] in (4, "Protection changed from W+E to E!")
