"""Tracee's event selection and filter syntax, for the ``tracee`` command.

Two spellings are accepted, as Tracee accepted them over its versions:

* **v0.17+**: ``--events/-e`` and ``--scope/-s``::

      -e execve,openat -e -close               # names; a leading '-' excludes
      -e openat.data.pathname=/etc/*           # argument filter (also .args.)
      -e openat.retval<0                       # return value filter
      -s comm=bash -s uid>=1000 -s pid=new     # scope: uid, pid, comm, mntns, pidns, uts,
      -s container -s not-container            #   executable, container[=new|=ID], follow
      -s follow

* **tracee-ebpf**: ``--trace/-t`` with the same filters, plus ``event=NAME[,NAME]``
  and ``set=NAME`` and the argument form ``openat.pathname=/etc/*``.

:func:`parse_selection` turns the options into a :class:`Selection`: which events
to trace, what the kernel can filter (pid, uid and comm allow-lists, container
only, follow, new processes only) and Python predicates for the rest (ranges,
``!=``, argument and return value filters). Values use Tracee's patterns: exact,
``prefix*``, ``*suffix``, ``*substring*``; several values after ``=`` are OR-ed,
several filters are AND-ed.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pytracee.engine.events import container_id_of, origin_of
from pytracee.engine.selectors import ArgPattern, SelectorError

from .decode import container_id_from_cgroup

__all__ = ["EVENT_SETS", "FilterError", "Selection", "parse_selection", "running_container_ids"]

Predicate = Callable[[Mapping[str, Any]], bool]


class FilterError(ValueError):
    """A filter expression is malformed; the message quotes it."""


#: Event sets selectable with ``set=NAME`` / ``-e NAME`` (a subset of Tracee's).
EVENT_SETS: Final[Mapping[str, tuple[str, ...]]] = {
    "fs": (
        "open",
        "openat",
        "openat2",
        "close",
        "dup",
        "dup2",
        "dup3",
        "chmod",
        "fchmodat",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "mount",
        "umount2",
        "security_file_open",
        "security_inode_rename",
        "security_sb_mount",
        "magic_write",
    ),
    "proc": (
        "execve",
        "execveat",
        "sched_process_exec",
        "sched_process_fork",
        "sched_process_exit",
        "ptrace",
        "process_vm_writev",
        "kill",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "unshare",
        "setns",
        "security_bprm_check",
    ),
    "net": ("connect", "accept", "accept4", "bind", "security_socket_connect", "socket_dup"),
    "proc_mem": ("mmap", "mprotect", "memfd_create", "mem_prot_alert"),
    "modules": ("init_module", "finit_module"),
}

_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_EXPRESSION = re.compile(r"^(?P<key>[A-Za-z_][\w.\-]*?)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>.*)$")
_NUMERIC_SCOPES: Final = {"uid": "userId", "pid": "hostProcessId", "mntns": "mountNamespace", "pidns": "pidNamespace"}
_STRING_SCOPES: Final = {"comm": "processName", "uts": "hostName"}


@dataclass
class Selection:
    """What to trace and how to filter it."""

    events: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    uids: set[int] = field(default_factory=set)
    comms: set[str] = field(default_factory=set)
    container_only: bool = False
    new_containers_only: bool = False
    follow: bool = False
    new_pids_only: bool = False
    #: Checks on every event (scope filters the kernel cannot apply).
    scope: list[Predicate] = field(default_factory=list)
    #: Checks on the events of one name (argument and return value filters).
    per_event: dict[str, list[Predicate]] = field(default_factory=dict)

    def wanted_events(self, defaults: Iterable[str] = ()) -> set[str]:
        """The event names to trace: the selected ones (or ``defaults``), minus exclusions."""
        chosen = set(self.events) if self.events else set(defaults)
        return chosen - self.excluded

    def start(self, proc: Path = Path("/proc")) -> None:
        """Call when tracing starts: ``container=new`` leaves out the containers running now."""
        if self.new_containers_only:
            existing = running_container_ids(proc)
            self.scope.append(lambda raw: bool(container_id_of(raw)) and container_id_of(raw) not in existing)

    def accepts(self, raw: Mapping[str, Any]) -> bool:
        """True when the event passes the scope and its own event's filters."""
        return all(check(raw) for check in self.scope) and all(
            check(raw) for check in self.per_event.get(raw.get("eventName", ""), ())
        )


def parse_selection(events: Iterable[str] = (), scopes: Iterable[str] = (), traces: Iterable[str] = ()) -> Selection:
    """Parse ``--events``, ``--scope`` and ``--trace`` values (each possibly comma-separated lists).

    :raises FilterError: for an unknown scope, operator or malformed expression.
    """
    selection = Selection()
    for item in events:
        _event_option(selection, item)
    for item in scopes:
        _scope_option(selection, item)
    for item in traces:
        text = item.strip()
        if text.startswith(("event=", "e=", "event!=", "e!=", "set=", "s=")):
            _key, op, value = _split(text)
            names = _expand(value.split(","))
            (selection.events if op == "=" else selection.excluded).update(names)
        elif _is_event_filter(text):
            _event_filter(selection, text)
        else:
            _scope_option(selection, text)
    return selection


# --- events ---------------------------------------------------------------------------------


def _event_option(selection: Selection, item: str) -> None:
    for part in _split_list(item):
        if _is_event_filter(part):
            _event_filter(selection, part)
        elif part.startswith("-"):
            selection.excluded.update(_expand([part[1:]]))
        else:
            selection.events.update(_expand([part]))


def _expand(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        name = name.strip()
        if not name:
            continue
        out.update(EVENT_SETS.get(name, (name,)))
    return out


def _event_filter(selection: Selection, text: str) -> None:
    key, op, value = _split(text)
    event, _, rest = key.partition(".")
    if not event or not rest:
        raise FilterError(f"{text!r}: expected EVENT.FIELD{op}VALUE")
    selection.events.add(event)
    parts = rest.split(".")
    if parts[0] in ("data", "args"):
        parts = parts[1:]
    if parts == ["retval"]:
        check = _numeric_check(text, op, value, lambda raw: raw.get("returnValue"))
    elif parts and parts[0] in ("context", "scope"):
        field_name = ".".join(parts[1:])
        check = _field_check(text, op, value, field_name)
    elif len(parts) == 1 and parts[0]:
        check = _arg_check(text, op, value, parts[0])
    else:
        raise FilterError(f"{text!r}: unknown field {rest!r}")
    selection.per_event.setdefault(event, []).append(check)


def _arg_check(text: str, op: str, value: str, arg: str) -> Predicate:
    if op not in ("=", "!="):
        return _numeric_check(text, op, value, lambda raw: _arg(raw, arg))
    pattern = _pattern(text, value)
    negate = op == "!="

    def check(raw: Mapping[str, Any]) -> bool:
        current = _arg(raw, arg)
        matched = pattern.matches(current if isinstance(current, str) else str(current))
        return matched != negate

    return check


def _arg(raw: Mapping[str, Any], name: str) -> Any:
    for arg in raw.get("args") or ():
        if arg.get("name") == name:
            return arg.get("value")
    return None


# --- scope ------------------------------------------------------------------------------------


def _scope_option(selection: Selection, item: str) -> None:
    for part in _split_list(item):
        _scope(selection, part)


def _scope(selection: Selection, text: str) -> None:
    bare = text.strip()
    if bare == "follow":
        selection.follow = True
        return
    if bare in ("container", "c"):
        selection.container_only = True
        return
    if bare in ("not-container", "!container", "host"):
        selection.scope.append(lambda raw: origin_of(raw) == "host")
        return
    key, op, value = _split(bare)
    if key in ("c", "container"):
        if op != "=":
            raise FilterError(f"{text!r}: container takes '=' (container=new or container=ID)")
        if value == "new":
            selection.container_only = True
            selection.new_containers_only = True
        else:
            ids = set(value.split(","))
            selection.container_only = True
            selection.scope.append(lambda raw: any(container_id_of(raw).startswith(i) for i in ids))
        return
    if key == "pid" and value == "new":
        if op != "=":
            raise FilterError(f"{text!r}: use pid=new")
        selection.new_pids_only = True
        return
    if key in _NUMERIC_SCOPES:
        numbers = _ints(text, value)
        if op == "=" and key in ("pid", "uid"):
            (selection.pids if key == "pid" else selection.uids).update(numbers)
            return
        json_key = _NUMERIC_SCOPES[key]
        selection.scope.append(_numeric_check(text, op, value, _getter(json_key)))
        return
    if key in _STRING_SCOPES or key in ("executable", "exec", "binary", "bin"):
        if op not in ("=", "!="):
            raise FilterError(f"{text!r}: {key} takes '=' or '!='")
        if key == "comm" and op == "=" and all("*" not in v for v in value.split(",")):
            # the kernel's comm is 15 bytes (TASK_COMM_LEN - 1), cut even inside a character:
            # compare those bytes (os.fsencode keeps bytes that are not UTF-8, from argv)
            selection.comms.update(os.fsdecode(os.fsencode(v)[:15]) for v in value.split(","))
            return
        if key in _STRING_SCOPES:
            selection.scope.append(_field_check(text, op, value, _STRING_SCOPES[key]))
        else:
            selection.scope.append(_field_check(text, op, value, "executable.path"))
        return
    raise FilterError(
        f"{text!r}: unknown scope {key!r} (uid, pid, pid=new, comm, mntns, pidns, uts, executable, container, follow)"
    )


def running_container_ids(proc: Path = Path("/proc")) -> frozenset[str]:
    """Container ids (64 hex digits in a cgroup path, as docker, containerd and CRI-O name them)
    of the processes running now."""
    ids: set[str] = set()
    for cgroup in proc.glob("[0-9]*/cgroup"):
        try:
            container = container_id_from_cgroup(cgroup.read_bytes().splitlines())
        except OSError:  # the process exited meanwhile
            continue
        if container:
            ids.add(container)
    return frozenset(ids)


# --- shared ---------------------------------------------------------------------------------


def _split(text: str) -> tuple[str, str, str]:
    match = _EXPRESSION.match(text.strip())
    if not match:
        raise FilterError(f"{text!r}: expected KEY OP VALUE with OP one of = != < > <= >=")
    return match["key"], match["op"], match["value"].strip()


def _split_list(item: str) -> list[str]:
    """One filter expression (its value may hold commas), or a comma-separated list of names."""
    if _has_operator(item):
        return [item.strip()]
    return [part.strip() for part in item.split(",") if part.strip()]


def _is_event_filter(text: str) -> bool:
    """``openat.pathname=/x`` or ``openat.retval<0``: an operator, and a dot in the key."""
    match = _EXPRESSION.match(text.strip())
    return match is not None and "." in match["key"]


def _getter(key: str) -> Callable[[Mapping[str, Any]], Any]:
    """The value of ``key`` in an event (None when it has none)."""
    return lambda raw: raw.get(key)


def _has_operator(text: str) -> bool:
    return bool(re.search(r"!=|<=|>=|=|<|>", text))


def _pattern(text: str, value: str) -> ArgPattern:
    try:
        return ArgPattern.parse([v.strip().strip("'\"") for v in value.split(",")])
    except SelectorError as exc:
        raise FilterError(f"{text!r}: {exc}") from None


def _ints(text: str, value: str) -> list[int]:
    try:
        return [int(v, 0) for v in value.split(",")]
    except ValueError:
        raise FilterError(f"{text!r}: expected numbers, got {value!r}") from None


def _numeric_check(text: str, op: str, value: str, get: Callable[[Mapping[str, Any]], Any]) -> Predicate:
    numbers = _ints(text, value)
    compare = _OPS[op]
    if op == "=":
        allowed = set(numbers)
        return lambda raw: get(raw) in allowed
    if op == "!=":
        denied = set(numbers)
        return lambda raw: get(raw) not in denied
    if len(numbers) != 1:
        raise FilterError(f"{text!r}: {op} takes one number")
    (limit,) = numbers

    def check(raw: Mapping[str, Any]) -> bool:
        current = get(raw)
        return isinstance(current, int) and compare(current, limit)

    return check


def _field_check(text: str, op: str, value: str, dotted: str) -> Predicate:
    if op not in ("=", "!="):
        return _numeric_check(text, op, value, lambda raw: _dig(raw, dotted))
    pattern = _pattern(text, value)
    negate = op == "!="
    return lambda raw: pattern.matches(str(_dig(raw, dotted))) != negate


def _dig(raw: Mapping[str, Any], dotted: str) -> Any:
    current: Any = raw
    for part in dotted.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current
