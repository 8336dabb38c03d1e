"""Argument values as Tracee prints them, in both directions.

Tracee emits most numeric arguments as raw integers, but with ``--output
option:parse-arguments`` it turns them into strings: open flags become
``"O_WRONLY|O_CREAT"``, ptrace requests ``"PTRACE_TRACEME"``, memory protection
alerts ``"Protection changed from W+E to E!"``. Signatures must work on both, so
this module parses either form into the raw value (``open_flags``,
``ptrace_request``, ...) and can render a raw value the way parse-arguments does
(``format_open_flags``, ...). Values are the Linux x86_64 ones Tracee uses.

It also holds the small predicates Tracee's Go signatures share
(``is_file_write``, ``is_memory_path``, ``is_elf``) and the socket address view.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "MEMORY_PATH_PREFIXES",
    "PROT_ALERT_MMAP_WX",
    "PROT_ALERT_MPROTECT_TO_X",
    "PROT_ALERT_MPROTECT_WX_TO_X",
    "PROT_ALERT_MPROTECT_X_TO_WX",
    "PTRACE_POKEDATA",
    "PTRACE_POKETEXT",
    "PTRACE_TRACEME",
    "ArgumentValueError",
    "SockAddr",
    "decode_bytes",
    "format_mem_prot_alert",
    "format_open_flags",
    "format_ptrace_request",
    "go_base",
    "is_elf",
    "is_file_read",
    "is_file_write",
    "is_memory_path",
    "mem_prot_alert",
    "open_flags",
    "ptrace_request",
]


class ArgumentValueError(ValueError):
    """An argument value has neither the raw nor the parse-arguments form."""


# --- open(2) flags ---------------------------------------------------------------------

O_ACCMODE = 0o3
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2

# Order follows Tracee's parse-arguments output (access mode first, then these);
# multi-bit flags come before the flags they contain (O_TMPFILE has O_DIRECTORY's bit).
_OPEN_FLAG_BITS: tuple[tuple[str, int], ...] = (
    ("O_TMPFILE", 0o20200000),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_SYNC", 0o4010000),
    ("O_DSYNC", 0o10000),
    ("FASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
    ("O_PATH", 0o10000000),
)
_ACCESS_MODES = {"O_RDONLY": O_RDONLY, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR}
_OPEN_FLAG_VALUES: dict[str, int] = {**_ACCESS_MODES, **dict(_OPEN_FLAG_BITS), "O_NDELAY": 0o4000}


def open_flags(value: Any) -> int:
    """Return open(2) flags as an int from a raw int or a ``"O_WRONLY|O_CREAT"`` string.

    Names are matched case-insensitively (Tracee's old Rego tests use ``"o_rdwr"``).
    A numeric string is accepted too.

    :raises ArgumentValueError: for anything else, e.g. an unknown flag name.
    """
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ArgumentValueError("empty open flags")
        number = _integer(text)
        if number is not None:
            return number
        flags = 0
        for name in text.upper().split("|"):
            name = name.strip()
            bit = _OPEN_FLAG_VALUES.get(name)
            if bit is None and name.startswith("0X"):  # bits without a name, as format_open_flags writes them
                try:
                    bit = int(name, 16)
                except ValueError:
                    bit = None
            if bit is None:
                raise ArgumentValueError(f"unknown open flag {name.strip()!r} in {value!r}")
            flags |= bit
        return flags
    raise ArgumentValueError(f"open flags must be an int or a string, not {type(value).__name__}")


def format_open_flags(flags: int) -> str:
    """Render open flags the way Tracee's parse-arguments does: ``O_WRONLY|O_CREAT|O_TRUNC``."""
    names = [{O_RDONLY: "O_RDONLY", O_WRONLY: "O_WRONLY", O_RDWR: "O_RDWR"}.get(flags & O_ACCMODE, "O_RDONLY")]
    rest = flags & ~O_ACCMODE
    for name, bit in _OPEN_FLAG_BITS:
        if rest & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def is_file_write(flags: int) -> bool:
    """True when the access mode opens for writing (O_WRONLY or O_RDWR)."""
    return flags & O_ACCMODE in (O_WRONLY, O_RDWR)


def is_file_read(flags: int) -> bool:
    """True when the access mode opens for reading (O_RDONLY or O_RDWR)."""
    return flags & O_ACCMODE in (O_RDONLY, O_RDWR)


# --- ptrace(2) requests ---------------------------------------------------------------

_PTRACE_REQUESTS: dict[int, str] = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSER",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSER",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    14: "PTRACE_GETFPREGS",
    15: "PTRACE_SETFPREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    18: "PTRACE_GETFPXREGS",
    19: "PTRACE_SETFPXREGS",
    24: "PTRACE_SYSCALL",
    25: "PTRACE_GET_THREAD_AREA",
    26: "PTRACE_SET_THREAD_AREA",
    30: "PTRACE_ARCH_PRCTL",
    31: "PTRACE_SYSEMU",
    32: "PTRACE_SYSEMU_SINGLESTEP",
    33: "PTRACE_SINGLEBLOCK",
    0x4200: "PTRACE_SETOPTIONS",
    0x4201: "PTRACE_GETEVENTMSG",
    0x4202: "PTRACE_GETSIGINFO",
    0x4203: "PTRACE_SETSIGINFO",
    0x4204: "PTRACE_GETREGSET",
    0x4205: "PTRACE_SETREGSET",
    0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT",
    0x4208: "PTRACE_LISTEN",
    0x4209: "PTRACE_PEEKSIGINFO",
    0x420A: "PTRACE_GETSIGMASK",
    0x420B: "PTRACE_SETSIGMASK",
    0x420C: "PTRACE_SECCOMP_GET_FILTER",
    0x420D: "PTRACE_SECCOMP_GET_METADATA",
    0x420E: "PTRACE_GET_SYSCALL_INFO",
}
_PTRACE_BY_NAME = {name: number for number, name in _PTRACE_REQUESTS.items()}

PTRACE_TRACEME = 0
PTRACE_POKETEXT = 4
PTRACE_POKEDATA = 5


def ptrace_request(value: Any) -> int:
    """Return a ptrace request number from an int or a name such as ``"PTRACE_TRACEME"``."""
    return _enum_value(value, _PTRACE_BY_NAME, "ptrace request")


def format_ptrace_request(request: int) -> str:
    """Render a ptrace request the way parse-arguments does (the number itself if unknown)."""
    return _PTRACE_REQUESTS.get(request, str(request))


# --- mem_prot_alert alerts -----------------------------------------------------------

PROT_ALERT_MMAP_WX = 1
PROT_ALERT_MPROTECT_TO_X = 2
PROT_ALERT_MPROTECT_X_TO_WX = 3
PROT_ALERT_MPROTECT_WX_TO_X = 4

_PROT_ALERTS: dict[int, str] = {
    PROT_ALERT_MMAP_WX: "Mmaped region with W+E permissions!",
    PROT_ALERT_MPROTECT_TO_X: "Protection changed to Executable!",
    PROT_ALERT_MPROTECT_X_TO_WX: "Protection changed from E to W+E!",
    PROT_ALERT_MPROTECT_WX_TO_X: "Protection changed from W+E to E!",
}
_PROT_ALERT_BY_TEXT = {text.upper(): number for number, text in _PROT_ALERTS.items()}


def mem_prot_alert(value: Any) -> int:
    """Return a mem_prot_alert code from an int or Tracee's message text."""
    return _enum_value(value, _PROT_ALERT_BY_TEXT, "mem_prot_alert alert")


def format_mem_prot_alert(alert: int) -> str:
    """Render a mem_prot_alert code as Tracee's message (``"Unknown alert"`` if unknown)."""
    return _PROT_ALERTS.get(alert, "Unknown alert")


def _enum_value(value: Any, by_name: Mapping[str, int], what: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        number = by_name.get(text.upper())
        if number is not None:
            return number
        number = _integer(text)
        if number is not None:
            return number
        raise ArgumentValueError(f"unknown {what} {value!r}")
    raise ArgumentValueError(f"{what} must be an int or a string, not {type(value).__name__}")


def _integer(text: str) -> int | None:
    """``text`` as a decimal integer (ASCII digits, optional sign), or None."""
    if text.isascii():
        try:
            return int(text)
        except ValueError:
            return None
    return None


# --- paths and contents ---------------------------------------------------------------

#: Prefixes of in-memory file paths (memfd_create files and shared memory).
MEMORY_PATH_PREFIXES: Final = ("memfd:", "/run/shm/", "/dev/shm/")  # noqa: S108 - paths to recognise, not to use


def is_memory_path(path: str) -> bool:
    """True for paths of in-memory files: ``memfd:``, ``/dev/shm/``, ``/run/shm/``."""
    return path.startswith(MEMORY_PATH_PREFIXES)


def go_base(path: str) -> str:
    """Go's ``path.Base``, which Tracee's signatures use: the last element with trailing
    slashes ignored, ``"/"`` for a path of slashes, ``"."`` for ``""``."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rpartition("/")[2]


def decode_bytes(value: Any) -> bytes:
    """Return a ``bytes`` argument as bytes.

    Tracee's JSON carries Go ``[]byte`` as base64; in-process producers may hand
    over bytes or a list of ints.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ArgumentValueError(f"bytes argument is not valid base64: {exc}") from None
    if isinstance(value, list):
        try:
            return bytes(value)
        except (TypeError, ValueError) as exc:
            raise ArgumentValueError(f"bytes argument is not a list of bytes: {exc}") from None
    if value is None:
        return b""
    raise ArgumentValueError(f"bytes argument must be base64 text, not {type(value).__name__}")


def is_elf(data: bytes) -> bool:
    """True when ``data`` starts with the ELF magic ``\\x7fELF``."""
    return data[:4] == b"\x7fELF"


# --- socket addresses -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SockAddr:
    """A ``struct sockaddr`` argument as Tracee prints it (all values are strings there).

    ``ip`` and ``port`` come from ``sin_addr``/``sin_port`` (IPv4) or
    ``sin6_addr``/``sin6_port`` (IPv6); ``path`` from ``sun_path`` (AF_UNIX).
    """

    family: str
    ip: str = ""
    port: str = ""
    path: str = ""

    def __reduce__(self) -> tuple[type[SockAddr], tuple[str, str, str, str]]:
        """Pickled and copied by its fields, through ``__init__`` (compiled, a frozen class takes no state)."""
        return (SockAddr, (self.family, self.ip, self.port, self.path))

    @classmethod
    def from_value(cls, value: Any) -> SockAddr:
        """Build from Tracee's ``{"sa_family": "AF_INET", "sin_addr": ..., ...}`` object."""
        if type(value) is dict:  # (as decoded: read without the ABC check and a method call per key)
            fields: dict[str, Any] = value
        elif isinstance(value, Mapping):
            fields = dict(value)
        else:
            raise ArgumentValueError(f"sockaddr must be an object, not {type(value).__name__}")
        family = str(fields.get("sa_family", ""))
        if family == "AF_INET6":
            ip, port = fields.get("sin6_addr", ""), fields.get("sin6_port", "")
        else:
            ip, port = fields.get("sin_addr", ""), fields.get("sin_port", "")
        return cls(family, str(ip), str(port), str(fields.get("sun_path", "")))

    @property
    def is_internet(self) -> bool:
        """AF_INET or AF_INET6."""
        return self.family in ("AF_INET", "AF_INET6")

    @property
    def is_unix(self) -> bool:
        """AF_UNIX."""
        return self.family == "AF_UNIX"
