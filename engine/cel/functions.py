"""The functions CEL conditions and output fields can call, the same on every backend.

Each :class:`CelFunction` is a plain Python implementation plus the CEL
overloads it accepts (parameter types by name). The backends
(:mod:`.backends`) turn the table into their own declarations, so an
expression means the same thing on ``cel-expr-python`` and ``cel-python``: a
call with argument types no overload accepts is an evaluation error (the
event does not match), and so is an implementation that raises.

**Event data** (Tracee's YAML detectors)::

    getEventData("pathname")     the argument's value (string, int, list, map ...), null if absent
    getData("pathname")          the same (the name Tracee's newest detectors use)
    hasData("pathname")          whether the event has that argument

They read the arguments of the event being evaluated from a :class:`EventSlot`
the signature fills once per event, so no per-event function objects are built.

**Strings** (Tracee's names; callable as ``f(s, ...)`` or as ``s.f(...)``)::

    split(s, sep) -> list    join(list, sep) / join(list) -> string    trim(s)
    replace(s, old, new)     upper(s)    lower(s)
    basename(path)           dirname(path)       (Go's filepath.Base / filepath.Dir)

plus CEL's own ``contains``, ``startsWith``, ``endsWith``, ``matches``, ``size``.
``replace``, ``join``, ``upper`` and ``lower`` refuse (an evaluation error) to
build a string over :data:`~.limits.MAX_VALUE_SIZE` characters; the load-time
cost analysis (:mod:`.cost`) keeps rules that could from loading at all.

**Tracee argument values** in either form (raw, or ``option:parse-arguments``
strings), backed by :mod:`pytracee.engine.parsers`::

    openFlags(flags) -> int          isFileWrite(flags) / isFileRead(flags) -> bool
    ptraceRequest(request) -> int    memProtAlert(alert) -> int
    isMemoryPath(path) -> bool       isElf(bytes) -> bool   (base64 text as in Tracee's JSON, or bytes)
    sockaddrIp(addr), sockaddrPort(addr), sockaddrPath(addr) -> string
                                     (a sockaddr argument such as remote_addr: the IPv4/IPv6
                                     address and port, or the AF_UNIX path; "" when absent)
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import parsers
from ..parsers import go_base
from .limits import MAX_VALUE_SIZE

#: Standard CEL's timestamp accessors (``ts.getHours()``...): cheap scalars on every backend.
TIMESTAMP_ACCESSORS: Final = frozenset(
    {
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getMonth",
        "getSeconds",
    }
)

__all__ = ["FUNCTIONS", "TIMESTAMP_ACCESSORS", "CelFunction", "EventSlot", "function_names", "go_base", "go_dir"]

#: CEL type names used in overload declarations.
STRING, INT, UINT, BOOL, BYTES, LIST, MAP, NULL, DYN = (
    "string",
    "int",
    "uint",
    "bool",
    "bytes",
    "list",
    "map",
    "null",
    "dyn",
)


class EventSlot:
    """The arguments of the event being evaluated, shared by every expression of a backend.

    The signature sets :attr:`args` (and :attr:`deadline`) before it evaluates
    an event; the data functions read it. Evaluation is single-threaded and a signature computes
    everything it needs before it emits a finding (which may evaluate other
    signatures on a derived event), so one slot per backend is enough.
    """

    __slots__ = ("args", "deadline")

    def __init__(self) -> None:
        self.args: Mapping[str, Any] = {}
        #: ``time.perf_counter()`` past which an evaluation that can be stopped (cel-python) is.
        self.deadline = float("inf")


@dataclass(frozen=True, slots=True)
class CelFunction:
    """One CEL function: its name, implementation and overloads.

    :param overloads: ``(parameter types, return type)`` pairs, types named as above.
    :param member: also callable as a method of its first argument (``s.upper()``).
    :param needs_slot: the implementation takes the :class:`EventSlot` first.
    """

    name: str
    impl: Callable[..., Any]
    overloads: tuple[tuple[tuple[str, ...], str], ...]
    member: bool = False
    needs_slot: bool = False

    def bind(self, slot: EventSlot) -> Callable[..., Any]:
        """The implementation with the slot bound when it needs one."""
        if not self.needs_slot:
            return self.impl
        impl = self.impl
        return lambda *args: impl(slot, *args)


# --- event data ------------------------------------------------------------------------------


def _get_event_data(slot: EventSlot, name: str) -> Any:
    return slot.args.get(name)


def _has_data(slot: EventSlot, name: str) -> bool:
    return name in slot.args


# --- strings -----------------------------------------------------------------------------------


def _split(text: str, sep: str) -> list[str]:
    if sep == "":  # Go's strings.Split with an empty separator splits into characters
        return list(text)
    return text.split(sep)


def _join(items: list[Any], sep: str = "") -> str:
    if not all(isinstance(item, str) for item in items):
        raise TypeError("join: the list must hold strings only")
    _check_size("join", sum(map(len, items)) + max(len(items) - 1, 0) * len(sep))
    return sep.join(items)


def _replace(text: str, old: str, new: str) -> str:
    if len(new) > len(old) and len(text) * max(len(new), 1) > MAX_VALUE_SIZE:
        occurrences = len(text) + 1 if not old else text.count(old)
        _check_size("replace", len(text) + occurrences * (len(new) - len(old)))
    return text.replace(old, new)


def _case(name: str, change: Callable[[str], str]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        result = change(text)
        _check_size(name, len(result))
        return result

    convert.__name__ = name
    return convert


def _check_size(function: str, length: int) -> None:
    """Refuse to build a string over :data:`~.limits.MAX_VALUE_SIZE` characters."""
    if length > MAX_VALUE_SIZE:
        raise ValueError(f"{function}: the result would be {length:,} characters, over the limit of {MAX_VALUE_SIZE:,}")


def go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: everything before the last element, cleaned; ``"."`` when there is none."""
    head = path[: path.rfind("/") + 1]
    cleaned = posixpath.normpath(head) if head else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


# --- Tracee argument values -----------------------------------------------------------------


def _is_file_write(value: Any) -> bool:
    return parsers.is_file_write(parsers.open_flags(value))


def _is_file_read(value: Any) -> bool:
    return parsers.is_file_read(parsers.open_flags(value))


def _is_elf(value: Any) -> bool:
    return parsers.is_elf(parsers.decode_bytes(value))


def _sockaddr(part: str) -> Callable[[Any], str]:
    def get(value: Any) -> str:
        return str(getattr(parsers.SockAddr.from_value(value), part))

    get.__name__ = f"sockaddr_{part}"
    return get


_NUMERIC = ((INT,), (UINT,), (STRING,))


def _overloads(params: tuple[tuple[str, ...], ...], result: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple((p, result) for p in params)


#: Every function available to CEL expressions, by name.
FUNCTIONS: Final[Mapping[str, CelFunction]] = {
    f.name: f
    for f in (
        CelFunction("getEventData", _get_event_data, _overloads(((STRING,),), DYN), needs_slot=True),
        CelFunction("getData", _get_event_data, _overloads(((STRING,),), DYN), needs_slot=True),
        CelFunction("hasData", _has_data, _overloads(((STRING,),), BOOL), needs_slot=True),
        CelFunction("split", _split, _overloads(((STRING, STRING),), LIST), member=True),
        CelFunction("join", _join, _overloads(((LIST, STRING), (LIST,)), STRING), member=True),
        CelFunction("trim", str.strip, _overloads(((STRING,),), STRING), member=True),
        CelFunction("replace", _replace, _overloads(((STRING, STRING, STRING),), STRING), member=True),
        CelFunction("upper", _case("upper", str.upper), _overloads(((STRING,),), STRING), member=True),
        CelFunction("lower", _case("lower", str.lower), _overloads(((STRING,),), STRING), member=True),
        CelFunction("basename", go_base, _overloads(((STRING,),), STRING), member=True),
        CelFunction("dirname", go_dir, _overloads(((STRING,),), STRING), member=True),
        CelFunction("openFlags", parsers.open_flags, _overloads(_NUMERIC, INT)),
        CelFunction("isFileWrite", _is_file_write, _overloads(_NUMERIC, BOOL)),
        CelFunction("isFileRead", _is_file_read, _overloads(_NUMERIC, BOOL)),
        CelFunction("ptraceRequest", parsers.ptrace_request, _overloads(_NUMERIC, INT)),
        CelFunction("memProtAlert", parsers.mem_prot_alert, _overloads(_NUMERIC, INT)),
        CelFunction("isMemoryPath", parsers.is_memory_path, _overloads(((STRING,),), BOOL)),
        CelFunction("isElf", _is_elf, _overloads(((STRING,), (BYTES,), (NULL,)), BOOL)),
        CelFunction("sockaddrIp", _sockaddr("ip"), _overloads(((MAP,),), STRING)),
        CelFunction("sockaddrPort", _sockaddr("port"), _overloads(((MAP,),), STRING)),
        CelFunction("sockaddrPath", _sockaddr("path"), _overloads(((MAP,),), STRING)),
    )
}


def function_names() -> frozenset[str]:
    """Names of the functions above (for the backends' compile-time checks)."""
    return frozenset(FUNCTIONS)
