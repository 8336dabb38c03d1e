"""The kernel side of ``--capture``: which programs, syscalls and events it needs, and
the configuration written into bpf/capture.h's maps.

The capture programs (``?raw_tp``: not loaded unless capture is asked for) are put into
the per-syscall tail-call tables by :func:`install_programs`; the syscalls they serve get
``SEL_EXIT`` (write/read family, mprotect) or ``SEL_ENTER`` (init_module, finit_module)
in ``evsel`` (:func:`syscall_bits`), so the syscall tracepoints hand them over.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from pytracee.engine.catalogue import SYSCALLS

from .. import wire
from .options import CaptureOptions, FileFilter

if TYPE_CHECKING:
    from ..libbpf import BpfLink, BpfMap, BpfObject

__all__ = [
    "CAPTURES_MAP",
    "KIND_MEM",
    "KIND_MODULE",
    "KIND_MODULE_FD",
    "KIND_NET",
    "KIND_READ",
    "KIND_WRITE",
    "KernelCounters",
    "attach_network",
    "configure",
    "events_needed",
    "install_programs",
    "programs_needed",
    "syscall_bits",
]

CAPTURES_MAP: Final = "captures"
#: capture_chunk.kind (bpf/capture.h CAPK_*)
KIND_WRITE, KIND_READ, KIND_MEM, KIND_MODULE, KIND_MODULE_FD = 1, 2, 3, 4, 5
CHUNK_PATH: Final = 0x1
_CAPF_WRITE, _CAPF_READ, _CAPF_MEM, _CAPF_MODULE, _CAPF_NET = 0x1, 0x2, 0x4, 0x8, 0x10
KIND_NET: Final = 6
CHUNK_EGRESS: Final = 0x2
#: The cgroup programs of network capture (attached to the cgroup v2 root, not tail calls).
NET_PROGRAMS: Final = ("cap_skb_ingress", "cap_skb_egress")
_TYPE_BITS: Final = {"regular": 0x1, "pipe": 0x2, "socket": 0x4, "elf": 0x8}
_SEL_ENTER, _SEL_EXIT = 0x2, 0x4

#: the kernel moves these bytes from file to file (no user buffer): counted as not captured
MOVE_SYSCALLS: Final = ("sendfile", "splice", "copy_file_range")
WRITE_SYSCALLS: Final = ("write", "pwrite64", "writev", "pwritev", "pwritev2", *MOVE_SYSCALLS)
READ_SYSCALLS: Final = ("read", "pread64", "readv", "preadv", "preadv2", *MOVE_SYSCALLS)
MEM_SYSCALLS: Final = ("mprotect", "pkey_mprotect")
MODULE_SYSCALLS: Final = ("init_module", "finit_module")

#: program -> (tail-call table, the syscalls whose slots it fills, what it serves)
PROGRAMS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "cap_exit_io": ("prog_exit", WRITE_SYSCALLS + READ_SYSCALLS),
    "cap_exit_mem": ("prog_exit", MEM_SYSCALLS),
    "cap_enter_module": ("prog_enter", MODULE_SYSCALLS),
}
_U32: Final = struct.Struct("<I")


def _io_syscalls(opts: CaptureOptions) -> tuple[str, ...]:
    return (WRITE_SYSCALLS if opts.write.enabled else ()) + (READ_SYSCALLS if opts.read.enabled else ())


def programs_needed(opts: CaptureOptions) -> list[str]:
    """The capture programs to load for these options."""
    names = []
    if opts.write.enabled or opts.read.enabled:
        names.append("cap_exit_io")
    if opts.mem:
        names.append("cap_exit_mem")
    if opts.module:
        names.append("cap_enter_module")
    if opts.network:
        names += NET_PROGRAMS
    return names


def events_needed(opts: CaptureOptions) -> set[str]:
    """Events the capture depends on: exec copies on sched_process_exec, mem on mem_prot_alert."""
    events = set()
    if opts.exec:
        events.add("sched_process_exec")
    if opts.mem:
        events.add("mem_prot_alert")
    return events


def syscall_bits(opts: CaptureOptions) -> dict[int, int]:
    """evsel bits the capture adds, by syscall id."""
    bits: dict[int, int] = {}
    for name in _io_syscalls(opts) + (MEM_SYSCALLS if opts.mem else ()):
        bits[SYSCALLS[name]] = bits.get(SYSCALLS[name], 0) | _SEL_EXIT
    for name in MODULE_SYSCALLS if opts.module else ():
        bits[SYSCALLS[name]] = bits.get(SYSCALLS[name], 0) | _SEL_ENTER
    return bits


def install_programs(obj: BpfObject, names: Iterable[str]) -> None:
    """Put the loaded capture programs in their tail-call slots."""
    programs = obj.programs()
    for name in names:
        if name in NET_PROGRAMS:
            continue
        table, syscalls = PROGRAMS[name]
        prog = programs[name]
        m = obj.map(table)
        for sc in syscalls:
            m.update(_U32.pack(SYSCALLS[sc]), _U32.pack(prog.fd))


def _io_filter(flt: FileFilter) -> bytes:
    types = 0
    for t in flt.types:
        types |= _TYPE_BITS[t]
    fds = 0
    for fd in flt.fds:
        fds |= 1 << fd
    paths = [os.fsencode(p) for p in flt.paths] + [b""] * (wire.CAP_PATHS - len(flt.paths))
    return wire.IO_FILTER.pack(types, fds, len(flt.paths), 0, *paths)


def configure(obj: BpfObject, opts: CaptureOptions) -> None:
    """Write the capture configuration (flags, budgets, filters) into ``cap_cfg``."""
    flags = (
        (_CAPF_WRITE if opts.write.enabled else 0)
        | (_CAPF_READ if opts.read.enabled else 0)
        | (_CAPF_MEM if opts.mem else 0)
        | (_CAPF_MODULE if opts.module else 0)
        | (_CAPF_NET if opts.network else 0)
    )
    cfg = bytearray(wire.CAPTURE_CFG.pack(flags, opts.snaplen, opts.artifact_limit, opts.total_limit))
    io = _io_filter(opts.write) + _io_filter(opts.read)
    at = wire.CAPTURE_CFG.offset("io")
    cfg[at : at + len(io)] = io
    fmt = wire.MAPS["cap_cfg"]
    obj.map("cap_cfg").update(fmt.key.pack(0), bytes(cfg))


def cgroup2_root() -> str:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``, or ``.../unified`` on hybrid hosts)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    raise OSError("network capture needs a cgroup v2 hierarchy (none is mounted)")


def attach_network(obj: BpfObject) -> list[BpfLink]:
    """Attach the packet programs to the cgroup v2 root: every socket of the host is seen."""
    programs = obj.programs()
    fd = os.open(cgroup2_root(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return [programs[name].attach_cgroup(fd) for name in NET_PROGRAMS]
    finally:
        os.close(fd)


class KernelCounters:
    """What the kernel counted: in total (``cap_totals``) and per artifact (``cap_stats``)."""

    def __init__(self, totals: BpfMap, stats: BpfMap) -> None:
        self._totals = totals
        self._stats = stats

    def totals(self) -> dict[str, int]:
        """Bytes copied, chunks and bytes lost (the ring was full), bytes not copied (budgets)."""
        fmt = wire.MAPS["cap_totals"]
        out = {}
        for i, name in enumerate(("copied", "lost_chunks", "lost_bytes", "not_copied")):
            raw = self._totals.lookup(fmt.key.pack(i))
            out[name] = fmt.value.unpack_from(raw)[0] if raw is not None else 0
        return out

    def artifact(self, inode: int, seq: int, dev: int, kind: int, pid: int) -> dict[str, Any] | None:
        """The kernel's counters of one artifact (None: never seen, or evicted)."""
        fmt = wire.MAPS["cap_stats"]
        raw = self._stats.lookup(fmt.key.pack(inode, seq, dev, kind, pid, 0))
        return fmt.value.unpack_named(raw) if raw is not None else None
