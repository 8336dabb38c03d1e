"""The events Tracee records for the simulated node's tasks, in ``tracee -o json``'s layout.

:class:`TracedMachine` adds to :class:`machine.Machine` one method per event the
benign activity produces (``security_file_open``, ``openat``, ``read``, ``close``,
``mmap``, ``connect``, ``security_socket_connect``, ``execve``,
``sched_process_exec``, ``security_inode_rename``, ``magic_write``, ``ptrace``)
and :meth:`TracedMachine.event`, which stamps any event
with the clock, a CPU, its ``eventId`` (from the engine's catalogue) and its
syscall. Arguments carry Tracee v0.24 type names and raw values, or with
``parse_arguments`` the strings ``option:parse-arguments`` prints: open flags
are rendered by the engine (:func:`pytracee.engine.parsers.format_open_flags`);
ptrace requests by :func:`~pytracee.engine.parsers.format_ptrace_request`;
what the engine does not render (mmap protections and flags, inode modes, stdin
types, ``AT_FDCWD``, socket types) is rendered here.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from machine import BASE_TIMESTAMP, SOCK_STREAM, Machine, Proc
from pytracee.engine.catalogue import SYSCALLS, event_id
from pytracee.engine.parsers import format_open_flags, format_ptrace_request, open_flags

# --- argument values and the renderings the engine does not have ----------------------------
# (open(2) access modes, ptrace requests and mem_prot_alert codes are the engine's: pytracee.engine.parsers)

#: The open(2) flags the workload uses beyond the access modes, by name from the engine's table.
O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NONBLOCK, O_LARGEFILE, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC = (
    open_flags(name)
    for name in (
        "O_CREAT",
        "O_EXCL",
        "O_TRUNC",
        "O_APPEND",
        "O_NONBLOCK",
        "O_LARGEFILE",
        "O_DIRECTORY",
        "O_NOFOLLOW",
        "O_CLOEXEC",
    )
)
AT_FDCWD = -100
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_DENYWRITE = 0x02, 0x20, 0x800
S_IFCHR, S_IFIFO, S_IFSOCK = 0o020000, 0o010000, 0o140000
_STDIN_TYPES = {S_IFCHR: "S_IFCHR", S_IFIFO: "S_IFIFO", S_IFSOCK: "S_IFSOCK"}


def prot_text(prot: int) -> str:
    """mmap/mprotect protections the way parse-arguments prints them: ``PROT_READ|PROT_EXEC``."""
    names = [
        name
        for name, bit in (("PROT_READ", PROT_READ), ("PROT_WRITE", PROT_WRITE), ("PROT_EXEC", PROT_EXEC))
        if prot & bit
    ]
    return "|".join(names) or "PROT_NONE"


def map_flags_text(flags: int) -> str:
    """mmap flags the way parse-arguments prints them: ``MAP_PRIVATE|MAP_DENYWRITE``."""
    names = [
        n
        for n, b in (("MAP_PRIVATE", MAP_PRIVATE), ("MAP_ANONYMOUS", MAP_ANONYMOUS), ("MAP_DENYWRITE", MAP_DENYWRITE))
        if flags & b
    ]
    return "|".join(names)


def inode_mode_text(mode: int) -> str:
    """An inode mode the way parse-arguments prints it: ``S_IFREG|S_IRUSR|...``."""
    names = ["S_IFREG"] if mode & 0o170000 == 0o100000 else []
    for name, bit in (
        ("S_IRUSR", 0o400), ("S_IWUSR", 0o200), ("S_IXUSR", 0o100),
        ("S_IRGRP", 0o40), ("S_IWGRP", 0o20), ("S_IXGRP", 0o10),
        ("S_IROTH", 0o4), ("S_IWOTH", 0o2), ("S_IXOTH", 0o1),
    ):  # fmt: skip
        if mode & bit:
            names.append(name)
    return "|".join(names)


def inet(ip: str, port: int) -> dict[str, str]:
    """A ``SockAddr`` argument as Tracee prints it (strings, with or without parse-arguments)."""
    if ":" in ip:
        return {
            "sa_family": "AF_INET6",
            "sin6_port": str(port),
            "sin6_flowinfo": "0",
            "sin6_addr": ip,
            "sin6_scopeid": "0",
        }
    return {"sa_family": "AF_INET", "sin_port": str(port), "sin_addr": ip}


def unix(path: str) -> dict[str, str]:
    """An AF_UNIX ``SockAddr`` argument as Tracee prints it."""
    return {"sa_family": "AF_UNIX", "sun_path": path}


@functools.cache
def _event_id_text(name: str) -> str:
    """The ``eventId`` of event ``name`` as Tracee's JSON has it (a string), from the engine's catalogue."""
    number = event_id(name)
    if number is None:
        raise KeyError(f"{name!r} is not in the engine's event catalogue")
    return str(number)


# --- events ------------------------------------------------------------------------------------


class TracedMachine(Machine):
    """The simulated node as Tracee sees it: its tasks' events, one method per event.

    :param seed: everything is drawn from ``random.Random(seed)``.
    :param parse_arguments: render arguments as ``option:parse-arguments`` strings.
    :param start: where the clock starts, in nanoseconds since the epoch.
    """

    def __init__(self, seed: int = 1, *, parse_arguments: bool = False, start: int = BASE_TIMESTAMP) -> None:
        self.parse = parse_arguments
        super().__init__(seed, start=start)

    def event(
        self, p: Proc, name: str, args: list[dict[str, Any]], ret: int = 0, syscall: str | None = None
    ) -> dict[str, Any]:
        """One event of task ``p`` at the next tick of the clock."""
        self.now += self.rng.randrange(1_500, 45_000)
        ev = p.base.copy()
        ev["timestamp"] = self.now
        ev["processorId"] = self.rng.randrange(8)
        ev["eventId"] = _event_id_text(name)
        ev["eventName"] = name
        ev["argsNum"] = len(args)
        ev["returnValue"] = ret
        ev["syscall"] = syscall if syscall is not None else (name if name in SYSCALLS else "")
        ev["args"] = args
        return ev

    def _flags(self, flags: int) -> dict[str, Any]:
        if self.parse:
            return {"name": "flags", "type": "string", "value": format_open_flags(flags)}
        return {"name": "flags", "type": "int32", "value": flags}

    def security_file_open(
        self, p: Proc, path: str, flags: int, syscall: str = "openat", user_path: str | None = None
    ) -> dict[str, Any]:
        dev, inode = self.dev_inode(path)
        args = [
            {"name": "pathname", "type": "string", "value": path},
            self._flags(flags | O_LARGEFILE),
            {"name": "dev", "type": "uint32", "value": dev},
            {"name": "inode", "type": "uint64", "value": inode},
            {
                "name": "ctime",
                "type": "uint64",
                "value": BASE_TIMESTAMP - 86_400_000_000_000 * (1 + inode % 400) + inode,
            },
            {"name": "syscall_pathname", "type": "string", "value": user_path if user_path is not None else path},
        ]
        return self.event(p, "security_file_open", args, 0, syscall)

    def openat(self, p: Proc, path: str, flags: int, fd: int, mode: int = 0) -> dict[str, Any]:
        args = [
            {"name": "dirfd", "type": "int32", "value": "AT_FDCWD" if self.parse else AT_FDCWD},
            {"name": "pathname", "type": "string", "value": path},
            self._flags(flags),
            {"name": "mode", "type": "uint32", "value": mode},
        ]
        return self.event(p, "openat", args, fd)

    def read(self, p: Proc, fd: int, count: int, got: int) -> dict[str, Any]:
        args = [
            {"name": "fd", "type": "int32", "value": fd},
            {"name": "buf", "type": "trace.Pointer", "value": 0x5600_0000_0000 + self.rng.randrange(1 << 32) * 16},
            {"name": "count", "type": "uint64", "value": count},
        ]
        return self.event(p, "read", args, got)

    def close(self, p: Proc, fd: int) -> dict[str, Any]:
        return self.event(p, "close", [{"name": "fd", "type": "int32", "value": fd}], 0)

    def mmap(self, p: Proc, fd: int, length: int, prot: int, flags: int) -> dict[str, Any]:
        args = [
            {"name": "addr", "type": "trace.Pointer", "value": 0},
            {"name": "length", "type": "uint64", "value": length},
            {"name": "prot", "type": "int32", "value": prot_text(prot) if self.parse else prot},
            {"name": "flags", "type": "int32", "value": map_flags_text(flags) if self.parse else flags},
            {"name": "fd", "type": "int32", "value": fd},
            {"name": "off", "type": "uint64", "value": 0},
        ]
        return self.event(p, "mmap", args, 0x7F00_0000_0000 + self.rng.randrange(1 << 28) * 4096)

    def connect(self, p: Proc, fd: int, addr: dict[str, str], ret: int = 0) -> dict[str, Any]:
        args = [
            {"name": "sockfd", "type": "int32", "value": fd},
            {"name": "addr", "type": "SockAddr", "value": addr},
            {
                "name": "addrlen",
                "type": "int32",
                "value": 110 if addr["sa_family"] == "AF_UNIX" else (28 if addr["sa_family"] == "AF_INET6" else 16),
            },
        ]
        return self.event(p, "connect", args, ret)

    def security_socket_connect(self, p: Proc, fd: int, sock_type: int, addr: dict[str, str]) -> dict[str, Any]:
        args = [
            {"name": "sockfd", "type": "int32", "value": fd},
            {
                "name": "type",
                "type": "int32",
                "value": ("SOCK_STREAM" if sock_type == SOCK_STREAM else "SOCK_DGRAM") if self.parse else sock_type,
            },
            {"name": "remote_addr", "type": "SockAddr", "value": addr},
        ]
        return self.event(p, "security_socket_connect", args, 0, "connect")

    def execve(self, p: Proc, path: str, argv: list[str]) -> dict[str, Any]:
        args = [
            {"name": "pathname", "type": "string", "value": path},
            {"name": "argv", "type": "[]string", "value": argv},
            {"name": "envp", "type": "[]string", "value": None},
        ]
        return self.event(p, "execve", args, 0)

    def sched_process_exec(
        self,
        p: Proc,
        cmdpath: str,
        argv: list[str],
        prev_comm: str,
        stdin_type: int = S_IFCHR,
        interp: str | None = None,
    ) -> dict[str, Any]:
        dev, inode = self.dev_inode(p.exe)
        loader = (
            "/lib/ld-musl-x86_64.so.1"
            if p.container and p.container.libc == "musl"
            else "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        )
        static = p.container is not None and p.container.libc == "static"
        ldev, linode = self.dev_inode(loader)
        args = [
            {"name": "cmdpath", "type": "string", "value": cmdpath},
            {"name": "pathname", "type": "string", "value": p.exe},
            {"name": "dev", "type": "uint32", "value": dev},
            {"name": "inode", "type": "uint64", "value": inode},
            {"name": "ctime", "type": "uint64", "value": BASE_TIMESTAMP - 3_600_000_000_000 * (inode % 2000)},
            {"name": "inode_mode", "type": "uint16", "value": inode_mode_text(0o100755) if self.parse else 0o100755},
            {"name": "interpreter_pathname", "type": "string", "value": "" if static else loader},
            {"name": "interpreter_dev", "type": "uint32", "value": 0 if static else ldev},
            {"name": "interpreter_inode", "type": "uint64", "value": 0 if static else linode},
            {"name": "interpreter_ctime", "type": "uint64", "value": 0 if static else BASE_TIMESTAMP - 90 * 86_400_000_000_000},
            {"name": "argv", "type": "[]string", "value": argv},
            {"name": "interp", "type": "string", "value": interp if interp is not None else cmdpath},
            {"name": "stdin_type", "type": "uint16", "value": _STDIN_TYPES[stdin_type] if self.parse else stdin_type},
            {"name": "stdin_path", "type": "string", "value": "/dev/pts/0" if stdin_type == S_IFCHR else ("pipe:[48213]" if stdin_type == S_IFIFO else "socket:[48231]")},
            {"name": "invoked_from_kernel", "type": "bool", "value": False},
            {"name": "prev_comm", "type": "string", "value": prev_comm},
            {"name": "env", "type": "[]string", "value": p.env},
            {"name": "pwd", "type": "string", "value": p.cwd},
        ]  # fmt: skip
        return self.event(p, "sched_process_exec", args, 0, "execve")

    def security_inode_rename(self, p: Proc, old: str, new: str, syscall: str = "rename") -> dict[str, Any]:
        args = [
            {"name": "old_path", "type": "string", "value": old},
            {"name": "new_path", "type": "string", "value": new},
        ]
        return self.event(p, "security_inode_rename", args, 0, syscall)

    def magic_write(self, p: Proc, path: str, data: bytes, syscall: str = "write") -> dict[str, Any]:
        """The first bytes written to a file (``data``: what Tracee captures, base64 in the JSON)."""
        dev, inode = self.dev_inode(path)
        args = [
            {"name": "pathname", "type": "string", "value": path},
            {"name": "bytes", "type": "[]byte", "value": base64.b64encode(data).decode()},
            {"name": "dev", "type": "uint32", "value": dev},
            {"name": "inode", "type": "uint64", "value": inode},
        ]
        return self.event(p, "magic_write", args, 0, syscall)

    def ptrace(self, p: Proc, request: int, pid: int, addr: int = 0, data: int = 0, ret: int = 0) -> dict[str, Any]:
        args = [
            {"name": "request", "type": "int64", "value": format_ptrace_request(request) if self.parse else request},
            {"name": "pid", "type": "int32", "value": pid},
            {"name": "addr", "type": "trace.Pointer", "value": addr},
            {"name": "data", "type": "trace.Pointer", "value": data},
        ]
        return self.event(p, "ptrace", args, ret)
