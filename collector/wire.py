"""The wire formats shared with bpf/: the events the live collector produces (names, ids,
Tracee v0.24 argument names and types, how each argument travels in a record), and the
layouts of the C structs and map keys and values user space packs or reads.

Wire format of a record (see bpf/common.h): a fixed 184-byte header (:data:`EVENT_HEADER`),
then one 64-bit slot (:data:`ARG_SLOT`) per *fixed-size* argument in definition order, then
the *variable-size* arguments in definition order (string, bytes, sockaddr: a
:data:`VAR_ARG` head; string array: a :data:`STRARR_ARG` head). Hidden arguments are on
the wire only (the decoder uses them and drops them).

For syscall events the kernel records arguments generically: :func:`sys_kinds` gives the
per-argument kinds user space writes to the ``sysargs`` map. Events derived in the kernel
(security_*, sched_*, magic_write, mem_prot_alert, socket_dup) are written by dedicated C
code that follows the same layout; ``needs`` lists the syscall handlers they depend on.

Layouts (:class:`Layout`, registered in :data:`LAYOUTS`, and the map formats in
:data:`MAPS`) carry the C names of their structs and members: :func:`layout_mismatches`
compares them all with a compiled object's BTF.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pytracee.engine.catalogue import SYSCALLS, event_id

from . import btf as _btf
from .btf import Btf

__all__ = [
    "ARG_SLOT",
    "CGRP_INFO",
    "EVENTS",
    "EVENTS_BY_ID",
    "EVENT_HEADER",
    "FILTER_CFG",
    "LAYOUTS",
    "LOAD_CFG",
    "MAPS",
    "PROC_INFO",
    "STRARR_ARG",
    "SYS_DESC",
    "VAR_ARG",
    "ArgSpec",
    "EventSpec",
    "Kind",
    "Layout",
    "MapFormat",
    "layout_mismatches",
    "spec",
    "supported_events",
    "sys_kinds",
]

#: Wire kinds: i/u signed/unsigned 64-bit slot, b bool slot, t boot-time slot (converted to
#: epoch ns), s string, a string array, y bytes (base64 in JSON), k sockaddr.
Kind = Literal["i", "u", "b", "t", "s", "a", "y", "k"]
FIXED_KINDS: Final = frozenset("iubt")

# Kernel-side argument kinds of the generic syscall recorder (bpf/maps.h T_*).
T_NONE, T_INT, T_UINT, T_LONG, T_ULONG, T_U16 = 0, 1, 2, 3, 4, 5
T_STR, T_STRARR, T_SOCKADDR, T_SOCKADDR_EXIT = 10, 11, 12, 13

_KIND_OF_TYPE: Final[Mapping[str, Kind]] = {
    "int32": "i",
    "int64": "i",
    "uint16": "u",
    "uint32": "u",
    "uint64": "u",
    "trace.Pointer": "u",
    "bool": "b",
    "time.Time": "t",
    "string": "s",
    "[]string": "a",
    "[]byte": "y",
    "SockAddr": "k",
}

_SYS_KIND_OF_TYPE: Final[Mapping[str, int]] = {
    "int32": T_INT,
    "uint32": T_UINT,
    "uint16": T_U16,
    "int64": T_LONG,
    "uint64": T_ULONG,
    "trace.Pointer": T_ULONG,
    "string": T_STR,
    "[]string": T_STRARR,
    "SockAddr": T_SOCKADDR,
}


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument: Tracee's name and v0.24 type, its wire kind, and whether it is hidden."""

    name: str
    type: str
    hidden: bool = False
    at_exit: bool = False  # syscall argument the kernel fills in (read at sys_exit)

    @property
    def kind(self) -> Kind:
        return _KIND_OF_TYPE[self.type]

    @property
    def fixed(self) -> bool:
        return self.kind in FIXED_KINDS


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event the collector can produce."""

    name: str
    id: int
    args: tuple[ArgSpec, ...]
    syscall: bool = False
    #: (syscall name, "enter" | "exit") handlers a derived event is emitted from.
    needs: tuple[tuple[str, str], ...] = ()
    doc: str = ""
    visible: tuple[ArgSpec, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "visible", tuple(a for a in self.args if not a.hidden))

    @property
    def wire_order(self) -> tuple[ArgSpec, ...]:
        """Arguments in wire order: fixed-size first, then variable-size (each in definition order)."""
        return tuple(a for a in self.args if a.fixed) + tuple(a for a in self.args if not a.fixed)


def _a(spec: str) -> tuple[ArgSpec, ...]:
    """Parse "name:type, name:type!, ..." ("!": hidden, "^": filled at syscall exit)."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, typ = part.partition(":")
        hidden, at_exit = typ.endswith("!"), typ.endswith("^")
        typ = typ.rstrip("!^")
        if typ not in _KIND_OF_TYPE:
            raise ValueError(f"unknown argument type {typ!r} of {name!r}")
        out.append(ArgSpec(name.strip(), typ, hidden=hidden, at_exit=at_exit))
    return tuple(out)


# Syscalls: Tracee's argument names; v0.24 types (C types mapped as Tracee did:
# int -> int32, long/off_t -> int64, unsigned int/uid_t/gid_t -> uint32, mode_t -> uint16,
# size_t/unsigned long -> uint64, pointers -> trace.Pointer, const char* -> string,
# const char*const* -> []string, struct sockaddr* -> SockAddr).
_SYSCALL_ARGS: Final[Mapping[str, str]] = {
    "open": "pathname:string, flags:int32, mode:uint16",
    "creat": "pathname:string, mode:uint16",
    "close": "fd:int32",
    "mmap": "addr:trace.Pointer, length:uint64, prot:int32, flags:int32, fd:int32, off:int64",
    "mprotect": "addr:trace.Pointer, len:uint64, prot:int32",
    "write": "fd:int32, buf:trace.Pointer, count:uint64",
    "pwrite64": "fd:int32, buf:trace.Pointer, count:uint64, offset:int64",
    "dup": "oldfd:int32",
    "dup2": "oldfd:int32, newfd:int32",
    "dup3": "oldfd:int32, newfd:int32, flags:int32",
    "connect": "sockfd:int32, addr:SockAddr, addrlen:int32",
    "accept": "sockfd:int32, addr:SockAddr^, addrlen:trace.Pointer",
    "accept4": "sockfd:int32, addr:SockAddr^, addrlen:trace.Pointer, flags:int32",
    "bind": "sockfd:int32, addr:SockAddr, addrlen:int32",
    "execve": "pathname:string, argv:[]string, envp:[]string",
    "execveat": "dirfd:int32, pathname:string, argv:[]string, envp:[]string, flags:int32",
    "kill": "pid:int32, sig:int32",
    "rename": "oldpath:string, newpath:string",
    "renameat": "olddirfd:int32, oldpath:string, newdirfd:int32, newpath:string",
    "renameat2": "olddirfd:int32, oldpath:string, newdirfd:int32, newpath:string, flags:uint32",
    "unlink": "pathname:string",
    "unlinkat": "dirfd:int32, pathname:string, flags:int32",
    "chmod": "pathname:string, mode:uint16",
    "fchmodat": "dirfd:int32, pathname:string, mode:uint16, flags:int32",
    "ptrace": "request:int64, pid:int32, addr:trace.Pointer, data:trace.Pointer",
    "setuid": "uid:uint32",
    "setgid": "gid:uint32",
    "setreuid": "ruid:uint32, euid:uint32",
    "setregid": "rgid:uint32, egid:uint32",
    "setresuid": "ruid:uint32, euid:uint32, suid:uint32",
    "setresgid": "rgid:uint32, egid:uint32, sgid:uint32",
    "mount": "source:string, target:string, filesystemtype:string, mountflags:uint64, data:trace.Pointer",
    "umount2": "target:string, flags:int32",
    "init_module": "module_image:trace.Pointer, len:uint64, param_values:string",
    "finit_module": "fd:int32, param_values:string, flags:int32",
    "openat": "dirfd:int32, pathname:string, flags:int32, mode:uint16",
    "openat2": "dirfd:int32, pathname:string, how:trace.Pointer, size:uint64",
    "unshare": "flags:int32",
    "setns": "fd:int32, nstype:int32",
    "process_vm_writev": (
        "pid:int32, local_iov:trace.Pointer, liovcnt:uint64, remote_iov:trace.Pointer, riovcnt:uint64, flags:uint64"
    ),
    "memfd_create": "name:string, flags:uint32",
}

_TIME = "time.Time"


def _tracee_events() -> list[EventSpec]:
    """The events Tracee defines itself that the kernel side emulates."""
    fork_args = ", ".join(
        f"{who}_{field_}:{'time.Time' if field_ == 'start_time' else 'int32'}"
        for who in ("parent", "child", "parent_process", "leader")
        for field_ in ("tid", "ns_tid", "pid", "ns_pid", "start_time")
    ).replace("child_start_time", "start_time")
    return [
        EventSpec(
            "sched_process_fork",
            _id("sched_process_fork"),
            _a(fork_args),
            doc="raw_tp/sched_process_fork: the forking thread, the new task, its parent process and leader",
        ),
        EventSpec(
            "sched_process_exec",
            _id("sched_process_exec"),
            _a(
                "cmdpath:string, pathname:string, dev:uint32, inode:uint64, ctime:uint64, inode_mode:uint16,"
                " interpreter_pathname:string, interpreter_dev:uint32, interpreter_inode:uint64,"
                " interpreter_ctime:uint64, argv:[]string, interp:string, stdin_type:uint16, stdin_path:string,"
                " invoked_from_kernel:bool, prev_comm:string, env:[]string, pwd:string"
            ),
            needs=(("execve", "enter"), ("execveat", "enter")),
            doc="raw_tp/sched_process_exec (bprm); prev_comm saved at execve enter; interpreter: the file at AT_BASE",
        ),
        EventSpec(
            "sched_process_exit",
            _id("sched_process_exit"),
            _a("exit_code:int32, signal_code:int32, process_group_exit:bool"),
            doc="raw_tp/sched_process_exit",
        ),
        EventSpec(
            "security_bprm_check",
            _id("security_bprm_check"),
            _a("pathname:string, dev:uint32, inode:uint64, argv:[]string, envp:[]string"),
            needs=(("execve", "enter"), ("execveat", "enter")),
            doc="raw_tp/sched_process_exec (bprm->file), with the caller's comm",
        ),
        EventSpec(
            "security_file_open",
            _id("security_file_open"),
            _a("pathname:string, flags:int32, dev:uint32, inode:uint64, ctime:uint64, syscall_pathname:string"),
            needs=tuple((s, "exit") for s in ("open", "creat", "openat", "openat2", "open_by_handle_at")),
            doc="exit of open/creat/openat/openat2/open_by_handle_at: returned fd -> struct file",
        ),
        EventSpec(
            "security_socket_connect",
            _id("security_socket_connect"),
            _a("sockfd:int32, type:int32, remote_addr:SockAddr"),
            needs=(("connect", "exit"),),
            doc="exit of connect (AF_INET, AF_INET6, AF_UNIX): the socket's peer address once connected",
        ),
        EventSpec(
            "security_inode_rename",
            _id("security_inode_rename"),
            _a("old_path:string, new_path:string, old_base:string!, new_base:string!"),
            needs=(("rename", "exit"), ("renameat", "exit"), ("renameat2", "exit")),
            doc="exit of rename/renameat/renameat2; relative paths joined to cwd or dirfd's path",
        ),
        EventSpec(
            "security_sb_mount",
            _id("security_sb_mount"),
            _a("dev_name:string, path:string, type:string, flags:uint64, path_base:string!"),
            needs=(("mount", "exit"),),
            doc="exit of mount; a relative target is joined to the cwd",
        ),
        EventSpec(
            "magic_write",
            _id("magic_write"),
            _a("pathname:string, bytes:[]byte, dev:uint32, inode:uint64"),
            needs=(("write", "enter"), ("pwrite64", "enter")),
            doc="enter of write/pwrite64 at offset 0 of a regular file: its first 20 bytes",
        ),
        EventSpec(
            "mem_prot_alert",
            _id("mem_prot_alert"),
            _a(
                "alert:uint32, addr:trace.Pointer, len:uint64, prot:int32, prev_prot:int32, pathname:string,"
                " dev:uint32, inode:uint64, ctime:uint64"
            ),
            needs=(("mmap", "exit"), ("mprotect", "enter"), ("pkey_mprotect", "enter")),
            doc="mmap W+X (alert 1); mprotect alerts 2, 3, 4 per VMA from bpf_find_vma (else alert 4 of W+X regions)",
        ),
        EventSpec(
            "socket_dup",
            _id("socket_dup"),
            _a("oldfd:int32, newfd:int32, remote_addr:SockAddr"),
            needs=(("dup", "exit"), ("dup2", "exit"), ("dup3", "exit")),
            doc="exit of dup/dup2/dup3 duplicating an AF_INET/AF_INET6 socket (peer address from the sock)",
        ),
    ]


def _id(name: str) -> int:
    ev = event_id(name)
    if ev is None:
        raise KeyError(f"{name} is not in engine/catalogue.py")
    return ev


def _build() -> dict[str, EventSpec]:
    out: dict[str, EventSpec] = {}
    for name, args in _SYSCALL_ARGS.items():
        out[name] = EventSpec(name, SYSCALLS[name], _a(args), syscall=True, doc="raw_tp/sys_enter + raw_tp/sys_exit")
    for ev in _tracee_events():
        out[ev.name] = ev
    return out


#: Every event the collector can produce, by name.
EVENTS: Final[Mapping[str, EventSpec]] = _build()
#: By event id.
EVENTS_BY_ID: Final[Mapping[int, EventSpec]] = {ev.id: ev for ev in EVENTS.values()}


def spec(name: str) -> EventSpec:
    """The definition of event ``name`` (KeyError if the collector cannot produce it)."""
    return EVENTS[name]


def supported_events() -> list[str]:
    """Names of the events the collector can produce, sorted."""
    return sorted(EVENTS)


def sys_kinds(ev: EventSpec) -> bytes:
    """The 8-byte ``struct sys_desc`` of a syscall event for the ``sysargs`` map."""
    if not ev.syscall:
        raise ValueError(f"{ev.name} is not a syscall event")
    kinds = [T_SOCKADDR_EXIT if a.at_exit else _SYS_KIND_OF_TYPE[a.type] for a in ev.args]
    if len(kinds) > SYS_DESC.field_size("kinds"):
        raise ValueError(f"{ev.name} has more than {SYS_DESC.field_size('kinds')} arguments")
    return SYS_DESC.pack(bytes(kinds), b"")  # the rest: T_NONE (0)


# ---- the C structs user space reads or writes ---------------------------------------
#
# Each layout below is a copy of a struct of bpf/ (or the C type of a map key or value),
# member by member with the C names: tests/test_wire_layouts.py compares every one, and
# every map format, with the compiled object's BTF (sizes, offsets, types, array shapes),
# and the loader refuses an object whose layouts differ. Code that packs or unpacks what
# the kernel shares goes through these, so nothing here can fall behind unnoticed.

_INT_CODES: Final[Mapping[str, tuple[int, bool]]] = {
    "B": (1, False), "b": (1, True), "H": (2, False), "h": (2, True),
    "I": (4, False), "i": (4, True), "Q": (8, False), "q": (8, True),
}  # fmt: skip
_ITEM: Final = re.compile(r"(\d*)([BbHhIiQqsx])")


def _items(code: str) -> list[tuple[int, str]]:
    """The (count, format character) items of a member's struct format: "2I" -> [(2, "I")]."""
    items = [(int(n) if n else 1, ch) for n, ch in _ITEM.findall(code)]
    if not items or _ITEM.sub("", code):
        raise ValueError(f"unsupported member format {code!r}")
    return items


class Layout:
    """A C type as user space packs and unpacks it: little endian, no implicit padding.

    ``c_name`` is the struct's name in bpf/ (for a scalar: its C type, e.g. ``u32``);
    ``fields`` its members in order, each with the :mod:`struct` format of its bytes:
    ``"I"`` a u32, ``"i"`` an s32, ``"2I"`` a u32[2], ``"16s"`` a char[16] (or u8[16]),
    ``"256s256s"`` a char[2][256] (one item per row), ``"8x"`` bytes read as nothing.
    Padding members are named as in C. A scalar has one field, named "".
    """

    __slots__ = ("_offsets", "c_name", "fields", "format", "pack", "scalar", "size", "struct", "unpack_from")

    def __init__(self, c_name: str, fields: tuple[tuple[str, str], ...], scalar: bool = False) -> None:
        self.c_name = c_name
        self.fields = fields
        self.scalar = scalar
        self._offsets: dict[str, tuple[int, int, int]] = {}  # name -> (offset, size, values)
        offset = 0
        for name, code in fields:
            size = struct.calcsize("<" + code)
            values = sum((1 if ch == "s" else n) for n, ch in _items(code) if ch != "x")
            if name in self._offsets:
                raise ValueError(f"{c_name}: member {name!r} twice")
            self._offsets[name] = (offset, size, values)
            offset += size
        self.format = "<" + "".join(code for _, code in fields)
        self.struct = struct.Struct(self.format)
        self.size = self.struct.size
        self.pack = self.struct.pack
        self.unpack_from = self.struct.unpack_from

    def __repr__(self) -> str:
        return f"Layout({self.c_name!r}, {self.size} bytes)"

    def offset(self, name: str) -> int:
        """offsetof the member ``name``."""
        return self._offsets[name][0]

    def field_size(self, name: str) -> int:
        """sizeof the member ``name``."""
        return self._offsets[name][1]

    def field_struct(self, name: str) -> struct.Struct:
        """The struct reading member ``name`` alone (at its offset)."""
        return struct.Struct("<" + dict(self.fields)[name])

    def subset(self, *names: str) -> struct.Struct:
        """A struct reading only members ``names`` (in layout order), skipping the rest."""
        fmt, pos = "<", 0
        for name in names:
            offset, size, _ = self._offsets[name]
            if offset < pos:
                raise ValueError(f"{self.c_name}: {name!r} is not after the members before it")
            fmt += f"{offset - pos}x" if offset > pos else ""
            fmt += dict(self.fields)[name]
            pos = offset + size
        return struct.Struct(fmt)

    def spans_without(self, *names: str) -> list[tuple[int, int]]:
        """The byte ranges [start, end) of the members other than ``names`` (adjacent ones merged)."""
        spans: list[tuple[int, int]] = []
        for name, _ in self.fields:
            offset, size, _ = self._offsets[name]
            if name in names or not size:
                continue
            if spans and spans[-1][1] == offset:
                spans[-1] = (spans[-1][0], offset + size)
            else:
                spans.append((offset, offset + size))
        return spans

    def unpack_named(self, buf: Any, offset: int = 0) -> dict[str, Any]:
        """The members' values by name (a member of several values: a tuple of them)."""
        values = self.struct.unpack_from(buf, offset)
        out: dict[str, Any] = {}
        i = 0
        for name, _ in self.fields:
            n = self._offsets[name][2]
            out[name] = values[i] if n == 1 else tuple(values[i : i + n])
            i += n
        return out


#: Every struct layout, by C name (filled by :func:`_struct`; checked against the object).
LAYOUTS: Final[dict[str, Layout]] = {}


def _struct(c_name: str, *fields: tuple[str, str]) -> Layout:
    layout = Layout(c_name, fields)
    if c_name in LAYOUTS:
        raise ValueError(f"struct {c_name} declared twice")
    LAYOUTS[c_name] = layout
    return layout


def _scalar(c_name: str, code: str) -> Layout:
    return Layout(c_name, (("", code),), scalar=True)


TASK_COMM_LEN: Final = 16  # bpf/common.h
UTS_LEN: Final = 64
EXE_LEN: Final = 256  # bpf/maps.h
CG_NAMES, CG_NAME_LEN = 4, 128  # bpf/maps.h: cgroup path components kept, and their size

U8: Final = _scalar("u8", "B")
U32: Final = _scalar("u32", "I")
U64: Final = _scalar("u64", "Q")
COMM: Final = _scalar("char[16]", f"{TASK_COMM_LEN}s")

#: The fixed header of every record (bpf/maps.h).
EVENT_HEADER: Final = _struct(
    "event_header",
    ("ts", "Q"), ("start_time", "Q"), ("leader_start_time", "Q"), ("parent_start_time", "Q"), ("cgroup_id", "Q"),
    ("retval", "q"), ("event_id", "I"), ("syscall", "i"), ("host_pid", "I"), ("host_tid", "I"), ("host_ppid", "I"),
    ("pid", "I"), ("tid", "I"), ("ppid", "I"), ("uid", "I"), ("mnt_ns", "I"), ("pid_ns", "I"), ("cpu", "I"),
    ("flags", "I"), ("exe_gen", "I"), ("comm", f"{TASK_COMM_LEN}s"), ("uts", f"{UTS_LEN}s"),
)  # fmt: skip
#: A fixed-size argument's slot (bpf/common.h); signed kinds read it as "q".
ARG_SLOT: Final = _struct("arg_slot", ("value", "Q"))
#: The head of a string, bytes or sockaddr argument; its bytes follow, padded to 4.
VAR_ARG: Final = _struct("var_arg", ("len", "I"))
#: The head of a string array; its NUL-terminated strings follow, padded to 4.
STRARR_ARG: Final = _struct("strarr_arg", ("len", "I"), ("count", "I"))
#: A syscall's argument kinds (T_*), the value of ``sysargs``.
SYS_DESC: Final = _struct("sys_desc", ("kinds", "6s"), ("pad", "2s"))
#: The filter configuration, the one value of ``fcfg``.
FILTER_CFG: Final = _struct(
    "filter_cfg",
    ("self_tgid", "I"), ("flags", "I"), ("host_mnt_ns", "I"), ("cgroup_subsys", "i"), ("cgroup_hierarchy", "I"),
    ("pad", "I"), ("start_ts", "Q"), ("wakeup_bytes", "Q"),
)  # fmt: skip
#: A process's executable paths (``proc_info`` values): exe[gen & 1] is the current one.
PROC_INFO: Final = _struct(
    "proc_info", ("start_time", "Q"), ("gen", "I"), ("pad", "I"), ("len", "2I"), ("exe", f"{EXE_LEN}s" * 2)
)
#: A cgroup's path components, innermost first, and its container state (``cgrp_info`` values).
CGRP_INFO: Final = _struct("cgrp_info", ("state", "I"), ("pad", "I"), ("names", f"{CG_NAME_LEN}s" * CG_NAMES))
#: In-kernel data filters (bpf/datafilter.h): the LPM key of df_prefix and df_suffix ...
DF_STR_LEN: Final = 252  # an LPM key has at most 256 data bytes: the event id, then these
DF_CONTAINS_MAX: Final = 8
DF_KEY: Final = _struct("df_key", ("prefixlen", "I"), ("event_id", "I"), ("str", f"{DF_STR_LEN}s"))
#: ... and an event's flags and substring patterns (the value of df_events).
DF_EVENT: Final = _struct(
    "df_event",
    ("flags", "I"), ("ncontains", "I"), ("contains", f"{DF_CONTAINS_MAX}Q"), ("contains_mask", f"{DF_CONTAINS_MAX}Q"),
)  # fmt: skip
#: The load-time constants, the contents of section ``.rodata.load``.
LOAD_CFG: Final = _struct("load_cfg", ("kernel_btf", "I"), ("perf_output", "I"))

#: Forensic capture (bpf/capture.h): the filters of one direction (write or read) ...
CAP_PATHS, CAP_PATH_LEN = 3, 64
IO_FILTER: Final = _struct(
    "io_filter", ("types", "I"), ("fds", "I"), ("npaths", "I"), ("pad", "I"), ("paths", f"{CAP_PATH_LEN}s" * CAP_PATHS)
)
#: ... the capture configuration (the one value of ``cap_cfg``; ``io``: two io_filter) ...
CAPTURE_CFG: Final = _struct(
    "capture_cfg",
    ("flags", "I"), ("snaplen", "I"), ("artifact_budget", "Q"), ("total_budget", "Q"), ("io", f"{2 * IO_FILTER.size}x"),
)  # fmt: skip
#: ... one record of the ``captures`` ring buffer (an event_header first; ``size`` bytes follow) ...
CAPTURE_CHUNK: Final = _struct(
    "capture_chunk",
    ("hdr", f"{EVENT_HEADER.size}x"), ("off", "Q"), ("inode", "Q"), ("ctime", "Q"), ("total", "Q"), ("seq", "Q"),
    ("dev", "I"), ("mode", "I"), ("kind", "I"), ("size", "I"), ("fd", "i"), ("flags", "I"),
)  # fmt: skip
#: ... an artifact as the kernel counts it (``cap_stats`` keys) and its counters.
CAP_KEY: Final = _struct(
    "cap_key", ("inode", "Q"), ("seq", "Q"), ("dev", "I"), ("kind", "I"), ("pid", "I"), ("pad", "I")
)
CAP_STAT: Final = _struct(
    "cap_stat",
    ("offered", "Q"), ("lost_chunks", "Q"), ("lost_bytes", "Q"), ("over_budget", "Q"), ("flags", "I"), ("pad", "I"),
)  # fmt: skip

# BPF_MAP_TYPE_* of the per-CPU maps (their values are read once per possible CPU).
_PERCPU_MAP_TYPES: Final = frozenset(
    {5, 6, 10, 21}
)  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
# ... and of the maps whose values are file descriptors (written as u32).
_FD_MAP_TYPES: Final = frozenset({3, 4, 12, 13})  # PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS


@dataclass(frozen=True, slots=True)
class MapFormat:
    """The key and value layouts of a map user space reads or writes (``per_cpu``: one value
    per possible CPU, each padded to 8 bytes). A name starting with "." is a global-data
    section (key: its index, 0)."""

    name: str
    key: Layout
    value: Layout
    per_cpu: bool = False

    @property
    def value_stride(self) -> int:
        return (self.value.size + 7) & ~7 if self.per_cpu else self.value.size


#: Every map user space packs keys or values for, or reads, by name (see _map_* in
#: collector/collector.py: an access through another name fails).
MAPS: Final[Mapping[str, MapFormat]] = {
    m.name: m
    for m in (
        MapFormat(".rodata.load", U32, LOAD_CFG),
        MapFormat("fcfg", U32, FILTER_CFG),
        MapFormat("evsel", U32, U32),
        MapFormat("sysargs", U32, SYS_DESC),
        MapFormat("compat_ids", U32, U32),
        MapFormat("f_pids", U32, U8),
        MapFormat("f_uids", U32, U8),
        MapFormat("f_comms", COMM, U8),
        MapFormat("f_mntns", U32, U8),
        MapFormat("prog_vma", U32, U32),
        MapFormat("prog_exec", U32, U32),
        MapFormat("perf_events", U32, U32),
        MapFormat("lost", U32, U64, per_cpu=True),
        MapFormat("trunc_args", U32, U64, per_cpu=True),
        MapFormat("proc_info", U32, PROC_INFO),
        MapFormat("cgrp_info", U64, CGRP_INFO),
        MapFormat("df_events", U32, DF_EVENT),
        MapFormat("df_prefix", DF_KEY, U8),
        MapFormat("df_suffix", DF_KEY, U8),
        MapFormat("df_stats", U32, U64, per_cpu=True),
        MapFormat("cap_cfg", U32, CAPTURE_CFG),
        MapFormat("cap_totals", U32, U64),
        MapFormat("cap_stats", CAP_KEY, CAP_STAT),
    )
}


# ---- the check against a compiled object ---------------------------------------------


def _describe(btf: Btf, type_id: int) -> str:
    """A C type as a message shows it: "u32", "char[2][256]", "struct ctx_key"."""
    dims, base = btf.shape(type_id)
    t = btf.types[type_id]
    while t.kind in (_btf.CONST, _btf.VOLATILE, _btf.RESTRICT, _btf.TYPE_TAG):
        t = btf.types[t.ref]
    name = t.name if t.kind == _btf.TYPEDEF and not dims else base.name or "(anon)"
    if base.kind in (_btf.STRUCT, _btf.UNION):
        name = f"{'struct' if base.kind == _btf.STRUCT else 'union'} {name}"
    return name + "".join(f"[{d}]" for d in dims)


def _type_problem(btf: Btf, type_id: int, code: str) -> str | None:
    """Why a C type cannot be what ``code`` reads (None: it can)."""
    items = _items(code)
    chars = {ch for _, ch in items}
    if chars == {"x"}:
        return None  # opaque bytes: the size check covers it
    if len(chars) != 1:
        return f"format {code!r} mixes types (not comparable)"
    (ch,) = chars
    dims, base = btf.shape(type_id)
    if ch == "s":
        want_dims = (len(items), items[0][0]) if len(items) > 1 else (items[0][0],)
        if len({n for n, _ in items}) != 1 or base.kind != _btf.INT or base.size != 1 or dims != want_dims:
            return (
                f"C type {_describe(btf, type_id)}, Python reads char{''.join(f'[{d}]' for d in want_dims)} ({code!r})"
            )
        return None
    size, signed = _INT_CODES[ch]
    count = sum(n for n, _ in items)
    c_count = 1
    for d in dims:
        c_count *= d
    if base.kind == _btf.INT:
        ok = base.size == size and bool(base.encoding & _btf.INT_SIGNED) == signed
    elif base.kind in (_btf.ENUM, _btf.ENUM64):
        ok = base.size == size
    else:
        ok = False
    if not ok or c_count != count:
        py = f"{'s' if signed else 'u'}{size * 8}" + (f"[{count}]" if count > 1 or dims else "")
        return f"C type {_describe(btf, type_id)}, Python reads {py} ({code!r})"
    return None


def _struct_problems(btf: Btf, layout: Layout) -> list[str]:
    where = f"struct {layout.c_name}"
    found = btf.named(layout.c_name, _btf.STRUCT)
    if not found:
        return [f"{where}: not in the object's BTF"]
    problems: list[str] = []
    for t in found:
        if t.size != layout.size:
            problems.append(f"{where}: {t.size} bytes in C, {layout.size} in Python")
        c_names = [m.name for m in t.members]
        py_names = [name for name, _ in layout.fields]
        if c_names != py_names:
            problems.append(f"{where}: members ({', '.join(c_names)}) in C, ({', '.join(py_names)}) in Python")
        for m in t.members:
            if m.name not in py_names:
                continue
            member = f"{where}.{m.name}"
            if m.bitfield_size or m.bit_offset % 8:
                problems.append(f"{member}: a bitfield in C (Python reads whole bytes)")
                continue
            offset, size = m.bit_offset // 8, btf.size_of(m.type_id)
            if offset != layout.offset(m.name):
                problems.append(f"{member}: at offset {offset} in C, {layout.offset(m.name)} in Python")
            if size != layout.field_size(m.name):
                problems.append(f"{member}: {size} bytes in C, {layout.field_size(m.name)} in Python")
            problem = _type_problem(btf, m.type_id, dict(layout.fields)[m.name])
            if problem:
                problems.append(f"{member}: {problem}")
    return problems


def _type_vs_layout(btf: Btf, type_id: int, layout: Layout, where: str) -> list[str]:
    """A map's key or value type against the layout Python packs it with."""
    if layout.scalar:
        if btf.size_of(type_id) != layout.size:
            return [
                f"{where}: {_describe(btf, type_id)} ({btf.size_of(type_id)} bytes) in C, {layout.size} bytes in Python"
            ]
        problem = _type_problem(btf, type_id, layout.fields[0][1])
        return [f"{where}: {problem}"] if problem else []
    t = btf.resolve(type_id)
    if t.kind != _btf.STRUCT or t.name != layout.c_name:
        return [f"{where}: {_describe(btf, type_id)} in C, struct {layout.c_name} in Python"]
    return []  # its members: checked with the layouts


def _map_problems(btf: Btf, fmt: MapFormat) -> list[str]:
    where = f"map {fmt.name}"
    if fmt.name.startswith("."):  # a global-data section: its one variable is the value
        sec = btf.datasec(fmt.name)
        variables = list(btf.section_vars(fmt.name))
        if sec is None or len(variables) != 1:
            return [f"{where}: not a section with one variable in the object's BTF"]
        return _type_vs_layout(btf, variables[0].ref, fmt.value, f"{where} value")
    var = next((v for v in btf.section_vars(".maps") if v.name == fmt.name), None)
    if var is None:
        return [f"{where}: not in the object's BTF (.maps)"]
    members = {m.name: m.type_id for m in btf.resolve(var.ref).members}

    def pointee(member: str) -> int:
        return btf.resolve(members[member]).ref

    problems: list[str] = []
    map_type = btf.shape(pointee("type"))[0][0] if "type" in members else -1
    if (map_type in _PERCPU_MAP_TYPES) != fmt.per_cpu:
        problems.append(f"{where}: map type {map_type} in C, {'' if fmt.per_cpu else 'not '}per-CPU in Python")
    for part, layout in (("key", fmt.key), ("value", fmt.value)):
        if part in members:
            problems += _type_vs_layout(btf, pointee(part), layout, f"{where} {part}")
        elif f"{part}_size" in members or (part == "value" and "values" in members and map_type in _FD_MAP_TYPES):
            # a size only, or a program or map array declared with its contents: 4-byte fds
            size = btf.shape(pointee(f"{part}_size"))[0][0] if f"{part}_size" in members else 4
            if size != layout.size:
                problems.append(f"{where} {part}: {size} bytes in C, {layout.size} in Python")
        else:
            problems.append(f"{where}: no {part} type or size in C")
    return problems


def layout_mismatches(btf: Btf) -> list[str]:
    """Every difference between the layouts and map formats here and the object's BTF
    (empty: user space and the object agree)."""
    problems: list[str] = []
    for layout in LAYOUTS.values():
        problems += _struct_problems(btf, layout)
    for fmt in MAPS.values():
        problems += _map_problems(btf, fmt)
    return problems
