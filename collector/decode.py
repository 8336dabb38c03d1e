"""Turn one ring-buffer record of bpf/tracee.bpf.c into a ``trace.Event`` dict (v0.24 layout).

Every field of Tracee's v0.24 JSON is present (``matchedPolicies`` and ``metadata`` are
omitempty there and left out), ``eventId`` is a string, arguments are
``[{"name", "type", "value"}]`` in definition order with raw values as Tracee emits them
by default (ints unparsed, ``[]byte`` as base64 like Go's JSON, sockaddrs as Tracee's map
of strings), and boot-relative times are converted to epoch nanoseconds.

The executable path and the container id are not in the record: the decoder asks a
:class:`ContextSource` (the collector reads them from BPF maps) and caches the answers.
"""

from __future__ import annotations

import base64
import ipaddress
import posixpath
import re
import socket
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import orjson
from pytracee.engine.catalogue import SYSCALLS
from pytracee.engine.context.proctree import task_entity_id

from .wire import ARG_SLOT, EVENT_HEADER, EVENTS_BY_ID, STRARR_ARG, VAR_ARG, EventSpec

try:  # the C encoder of `tracee -o json` (collector/_fastjson.c), built by scripts/setup.sh
    from . import _fastjson  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - not built: the Python encoder, same output
    _fastjson = None

__all__ = ["HEADER", "ContextSource", "Decoder", "container_id_from_cgroup", "sockaddr_value", "task_entity_id"]

#: struct event_header (bpf/maps.h; collector/wire.py: EVENT_HEADER): 184 bytes.
HEADER: Final = EVENT_HEADER.struct
#: The 64-bit slot of a fixed-size argument, unsigned ("Q"); signed kinds read it as "q".
_SLOT: Final = ARG_SLOT.fields[0][1]
_ALL_ELEMS: Final = 0xFFFFFFFF
#: An argv/envp element this long was cut by the kernel (bpf/common.h ELEM_MAX, NUL included).
ELEM_CUT: Final = 4096 - 1
_SYSCALL_NAMES: Final[dict[int, str]] = {nr: name for name, nr in SYSCALLS.items()}
_CG_EXISTED, _CG_STARTED = 1, 3
_HDR_CG_STATE, _HDR_COMPAT = 0x3, 0x4  # event_header.flags (bpf/maps.h)
_HEX64: Final = re.compile(rb"[0-9a-f]{64}")

_AF_NAMES: Final[dict[int, str]] = {
    0: "AF_UNSPEC",
    1: "AF_UNIX",
    2: "AF_INET",
    10: "AF_INET6",
    16: "AF_NETLINK",
    17: "AF_PACKET",
    40: "AF_VSOCK",
}


class ContextSource(Protocol):
    """Where the decoder gets what the kernel keeps in maps instead of every record."""

    def executable(self, host_pid: int, leader_start: int, gen: int) -> str:
        """The executable path of process ``host_pid`` (started at ``leader_start``, boot ns) at
        its ``gen``-th exec, as the kernel recorded it; "" if that process is gone."""
        ...

    def cgroup_names(self, cgroup_id: int) -> list[bytes]:
        """The cgroup's own directory name and its ancestors' (innermost first)."""
        ...


class _NoContext:
    def executable(self, host_pid: int, leader_start: int, gen: int) -> str:
        return ""

    def cgroup_names(self, cgroup_id: int) -> list[bytes]:
        return []


def container_id_from_cgroup(names: list[bytes]) -> str:
    """The 64-hex container id in a cgroup path (docker, containerd, cri-o, podman), or ""."""
    for name in names:
        m = _HEX64.search(name)
        if m:
            return m.group().decode()
    return ""


def sockaddr_value(raw: bytes) -> dict[str, str]:
    """A struct sockaddr as Tracee's JSON map of strings."""
    if len(raw) < 2:
        return {}
    family = int.from_bytes(raw[:2], "little")
    name = _AF_NAMES.get(family, str(family))
    if family == 2 and len(raw) >= 8:
        return {
            "sa_family": name,
            "sin_port": str(int.from_bytes(raw[2:4], "big")),
            "sin_addr": socket.inet_ntoa(raw[4:8]),
        }
    if family == 10 and len(raw) >= 24:
        addr = ipaddress.IPv6Address(raw[8:24])
        mapped = addr.ipv4_mapped
        scope = int.from_bytes(raw[24:28], "little") if len(raw) >= 28 else 0
        return {
            "sa_family": name,
            "sin6_port": str(int.from_bytes(raw[2:4], "big")),
            "sin6_flowinfo": str(int.from_bytes(raw[4:8], "big")),
            "sin6_addr": str(mapped) if mapped else str(addr),
            "sin6_scopeid": str(scope),
        }
    if family == 1:
        path = raw[2:]
        # an abstract socket's name starts with a NUL: shown with "@", as ss(8) does
        path = b"@" + path[1:].split(b"\0", 1)[0] if path[:1] == b"\0" else path.split(b"\0", 1)[0]
        return {"sa_family": name, "sun_path": path.decode(errors="replace")}
    return {"sa_family": name}


def _join_base(path: str, base: str) -> str:
    """A relative path made absolute against its base directory (kept as given without one)."""
    if not base or path.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(base, path))


def _post_rename(values: list[Any]) -> None:
    values[0] = _join_base(values[0], values[2])
    values[1] = _join_base(values[1], values[3])


def _post_mount(values: list[Any]) -> None:
    values[1] = _join_base(values[1], values[4])


_POST: Final[Mapping[str, Callable[[list[Any]], None]]] = {
    "security_inode_rename": _post_rename,
    "security_sb_mount": _post_mount,
}


def _var_code(i: int, kind: str) -> list[str]:
    """Source lines decoding variable-size argument ``a{i}`` at ``pos`` (see bpf/common.h:
    a VAR_ARG or, for a string array, a STRARR_ARG head, then the bytes padded to 4)."""
    empty = {"s": "''", "a": "[]", "y": "''", "k": "{}"}[kind]
    head = STRARR_ARG if kind == "a" else VAR_ARG
    len_at = head.offset("len")
    lines = [
        f"if pos + {len_at + head.field_size('len')} <= end:",
        f"    n = {'_ALEN' if kind == 'a' else '_VLEN'}(buf, pos + {len_at})[0]",
        f"    s = pos + {head.size}",
        "    e = s + n",
        "    if e > end:",
        "        e = end",
    ]
    count_at = STRARR_ARG.offset("count")
    if kind == "s":
        lines.append(f"    a{i} = buf[s:e].decode('utf-8', 'replace')")
    elif kind == "a":
        lines += [
            f"    count = _ACOUNT(buf, pos + {count_at})[0] if pos + {count_at + STRARR_ARG.field_size('count')} <= end else 0",
            "    items = bytes(buf[s:e]).split(b'\\0')",
            "    if count == _ALL:",
            "        if items and not items[-1]:",
            "            items.pop()",
            "    else:",
            "        del items[count:]",
            "        if items and max(map(len, items)) >= _ELEM_CUT:",
            "            _cut[0] += 1",
            f"    a{i} = [x.decode('utf-8', 'replace') for x in items]",
        ]
    elif kind == "y":
        lines.append(f"    a{i} = _b64(bytes(buf[s:e])).decode('ascii')")
    else:
        lines.append(f"    a{i} = _sockaddr(bytes(buf[s:e]))")
    lines += ["    pos = s + ((n + 3) & ~3)", "else:", f"    a{i} = {empty}"]
    return lines


#: The argument kinds and count the C encoder handles (collector/_fastjson.c).
_FAST_KINDS: Final = "iutbs"
_FAST_MAX_ARGS: Final = 8


def _json_head(name: str, type_: str) -> bytes:
    """The JSON of an argument's object up to its value."""
    return b'{"name":' + orjson.dumps(name) + b',"type":' + orjson.dumps(type_) + b',"value":'


def _json_format(ev: EventSpec) -> tuple[bytes, list[str]]:
    """The %-format of the JSON of ``ev``'s visible arguments (as ``orjson.dumps`` of the
    decoder's list of dicts writes it), and the expression giving each value's text."""
    parts, values = [], []
    for i, a in enumerate(ev.args):
        if a.hidden:
            continue
        head = _json_head(a.name, a.type)
        if a.kind in ("i", "u", "t"):
            parts.append(head.replace(b"%", b"%%") + b"%d}")
            values.append(f"a{i}")
        else:
            parts.append(head.replace(b"%", b"%%") + b"%s}")
            values.append(f"(b'true' if a{i} else b'false')" if a.kind == "b" else f"_dumps(a{i})")
    return b"[" + b",".join(parts) + b"]", values


def _compile(
    ev: EventSpec, cut: list[int], as_json: bool = False
) -> Callable[[Any, int, int, int], list[dict[str, Any]]]:
    """A function decoding the arguments of ``ev`` from a record (generated once per event);
    ``cut[0]`` counts the string arrays with an element cut by the kernel. ``as_json``: the
    function returns the JSON of the list instead (bytes, what ``orjson.dumps`` makes of it)."""
    fixed = [(i, a) for i, a in enumerate(ev.args) if a.fixed]
    fmt = "<" + "".join(_SLOT.lower() if a.kind == "i" else _SLOT for _, a in fixed)
    env: dict[str, Any] = {
        "_VLEN": VAR_ARG.field_struct("len").unpack_from,
        "_ALEN": STRARR_ARG.field_struct("len").unpack_from,
        "_ACOUNT": STRARR_ARG.field_struct("count").unpack_from,
        "_ALL": _ALL_ELEMS,
        "_ELEM_CUT": ELEM_CUT,
        "_cut": cut,
        "_b64": base64.b64encode,
        "_sockaddr": sockaddr_value,
        "_post": _POST.get(ev.name),
        "_FIX": struct.Struct(fmt).unpack_from,
    }
    size = struct.calcsize(fmt)
    body = []
    if fixed:
        body += [
            f"if pos + {size} > end:",
            f"    raise ValueError('{ev.name}: record too short for its fixed arguments')",
            f"{', '.join(f'a{i}' for i, _ in fixed)}, = _FIX(buf, pos)",
            f"pos += {size}",
        ]
        for i, a in fixed:
            if a.kind == "t":
                body.append(f"a{i} = a{i} + boot if a{i} else 0")
            elif a.kind == "b":
                body.append(f"a{i} = bool(a{i})")
    for i, a in enumerate(ev.args):
        if not a.fixed:
            body += _var_code(i, a.kind)
    names = ", ".join(f"a{i}" for i in range(len(ev.args)))
    if env["_post"] is not None:
        body += [f"vals = [{names}]", "_post(vals)", f"{names}, = vals"]
    if as_json:
        env["_JSON"], values = _json_format(ev)
        env["_dumps"] = orjson.dumps
        body.append(f"return _JSON % ({''.join(v + ', ' for v in values)})")
    else:
        items = ", ".join(
            f"{{'name': {a.name!r}, 'type': {a.type!r}, 'value': a{i}}}" for i, a in enumerate(ev.args) if not a.hidden
        )
        body.append(f"return [{items}]")
    src = "def decode_args(buf, pos, end, boot):\n" + "\n".join("    " + line for line in body) + "\n"
    exec(compile(src, f"<decode {ev.name}>", "exec"), env)  # noqa: S102 - source built from EventSpec only
    return env["decode_args"]


def _arg_names_types(ev: EventSpec) -> tuple[tuple[str | None, ...], tuple[str | None, ...]]:
    """The name and type of each argument of ``ev``, None for a hidden one (for the C decoder)."""
    names = tuple(None if a.hidden else a.name for a in ev.args)
    return names, tuple(None if a.hidden else a.type for a in ev.args)


class _Plan:
    """How to decode one event id (built once)."""

    __slots__ = ("args", "fast", "id_str", "json_args", "json_ids", "name")

    def __init__(self, ev: EventSpec, cut: list[int]) -> None:
        self.name = ev.name
        self.id_str = str(ev.id)
        self.args = _compile(ev, cut)
        self.json_args = _compile(ev, cut, as_json=True)
        shown = sum(1 for a in ev.args if not a.hidden)
        #: The JSON of the fields after the thread context, up to the return value's.
        self.json_ids = orjson.dumps({"eventId": self.id_str, "eventName": ev.name, "argsNum": shown})[1:-1] + b","
        #: What the C encoder needs (collector/_fastjson.c), for the events it can encode.
        self.fast: tuple[bytes, bytes, tuple[bytes | None, ...]] | None = None
        kinds = "".join(a.kind for a in ev.args)
        if len(kinds) <= _FAST_MAX_ARGS and set(kinds) <= set(_FAST_KINDS) and ev.name not in _POST:
            heads = tuple(None if a.hidden else _json_head(a.name, a.type) for a in ev.args)
            self.fast = (self.json_ids, kinds.encode(), heads)


#: The header fields that change from one event of a thread to the next, and the two byte
#: ranges of the others (what a thread's cached context is looked up by).
_VARYING_FIELDS: Final = ("ts", "retval", "event_id", "syscall")
_VARYING: Final = EVENT_HEADER.subset(*_VARYING_FIELDS)
(_KEY_A, _KEY_B), (_KEY_C, _KEY_D) = EVENT_HEADER.spans_without(*_VARYING_FIELDS)

#: Bounds of the decoder's caches, emptied when full: thread contexts (~2 KiB each; every
#: new process or exec makes one, so a fork storm must not grow them), executables and
#: container ids. A cache miss costs a few microseconds; tracee's memory stays bounded.
TEMPLATE_CACHE_MAX: Final = 8192
#: The keys of an event's JSON object between "timestamp" and "eventId", and between
#: "syscall" and "args" (the thread context: the same for every event of a thread).
_CONTEXT_A: Final = (
    "threadStartTime", "processorId", "processId", "cgroupId", "threadId", "parentProcessId", "hostProcessId",
    "hostThreadId", "hostParentProcessId", "userId", "mountNamespace", "pidNamespace", "processName", "executable",
    "hostName", "containerId", "container", "kubernetes",
)  # fmt: skip
_CONTEXT_B: Final = ("stackAddresses", "contextFlags", "threadEntityId", "processEntityId", "parentEntityId")
_SYSCALL_JSON_BY_NR: Final = tuple(
    b'"' + _SYSCALL_NAMES[nr].encode() + b'",' if nr in _SYSCALL_NAMES else b'"",'
    for nr in range(max(_SYSCALL_NAMES) + 1)
)
_LINE: Final = b'{"timestamp":%d%s%s"returnValue":%d,"syscall":%s%s%s}\n'
_SYSCALL_JSON: Final[dict[int, bytes]] = {nr: b'"' + name.encode() + b'",' for nr, name in _SYSCALL_NAMES.items()}
_SYSCALL_NAME_BY_NR: Final = tuple(_SYSCALL_NAMES.get(nr, "") for nr in range(max(_SYSCALL_NAMES) + 1))
EXE_CACHE_MAX: Final = 16384
CONTAINER_CACHE_MAX: Final = 16384


class Decoder:
    """Decode records; caches per-thread context, per-process and per-cgroup lookups."""

    def __init__(
        self, boot_to_epoch_ns: int, context: ContextSource | None = None, events: Mapping[int, EventSpec] | None = None
    ) -> None:
        self.boot_to_epoch_ns = boot_to_epoch_ns
        self.context: ContextSource = context if context is not None else _NoContext()
        self._cut = [0]
        self._plans = {ev_id: _Plan(ev, self._cut) for ev_id, ev in (events or EVENTS_BY_ID).items()}
        self._templates: dict[bytes, dict[str, Any]] = {}
        #: Thread contexts as JSON: (up to "eventId", after "syscall" up to "args", printable ASCII).
        self._json_templates: dict[bytes, tuple[bytes, bytes, bool]] = {}
        self._dict_events: frozenset[int] = frozenset()
        self._fast_plans = {ev_id: plan.fast for ev_id, plan in self._plans.items() if plan.fast is not None}
        self._fast_state: tuple[Any, ...] = ()
        self._set_fast_state()
        #: What the C decoder needs (collector/_fastjson.c's decode): the same events as the encoder.
        self._dict_state = (
            boot_to_epoch_ns,
            self._templates,
            _SYSCALL_NAME_BY_NR,
            {
                ev_id: (plan.id_str, plan.name, fast[1], *_arg_names_types(ev))
                for ev_id, ev in (events or EVENTS_BY_ID).items()
                if (plan := self._plans[ev_id]).fast is not None and (fast := plan.fast) is not None
            },
            (_KEY_A, _KEY_B, _KEY_C, _KEY_D),
        )
        self._exe: dict[tuple[int, int, int], str] = {}
        self._containers: dict[int, str] = {}

    @property
    def dict_events(self) -> frozenset[int]:
        """Event ids :meth:`encode` leaves to :meth:`decode` (their printer changes them)."""
        return self._dict_events

    @dict_events.setter
    def dict_events(self, ids: frozenset[int]) -> None:
        if ids != self._dict_events:
            self._dict_events = frozenset(ids)
            self._set_fast_state()

    def _set_fast_state(self) -> None:
        self._fast_state = (
            self.boot_to_epoch_ns,
            self._json_templates,
            _SYSCALL_JSON_BY_NR,
            self._fast_plans,
            self._dict_events,
            (_KEY_A, _KEY_B, _KEY_C, _KEY_D),
        )

    @property
    def truncated(self) -> int:
        """Records with an argv/envp element the kernel cut at ELEM_MAX (it counts its other cuts)."""
        return self._cut[0]

    def _executable(self, host_pid: int, leader_start: int, gen: int) -> str:
        key = (host_pid, leader_start, gen)
        v = self._exe.get(key)
        if v is None:
            if len(self._exe) >= EXE_CACHE_MAX:
                self._exe.clear()
            v = self._exe[key] = self.context.executable(host_pid, leader_start, gen)
        return v

    def _container(self, cgroup_id: int) -> str:
        v = self._containers.get(cgroup_id)
        if v is None:
            if len(self._containers) >= CONTAINER_CACHE_MAX:
                self._containers.clear()
            v = self._containers[cgroup_id] = (
                container_id_from_cgroup(self.context.cgroup_names(cgroup_id)) if cgroup_id else ""
            )
        return v

    def _template(self, buf: Any, off: int) -> dict[str, Any]:
        """The event dict of a thread's context, with placeholders for the per-event fields."""
        h = EVENT_HEADER.unpack_named(buf, off)
        cgroup_id, host_pid, host_ppid, flags = h["cgroup_id"], h["host_pid"], h["host_ppid"], h["flags"]
        offset = self.boot_to_epoch_ns
        start_epoch = h["start_time"] + offset
        container_id = self._container(cgroup_id)
        return {
            "timestamp": 0,
            "threadStartTime": start_epoch,
            "processorId": h["cpu"],
            "processId": h["pid"],
            "cgroupId": cgroup_id,
            "threadId": h["tid"],
            "parentProcessId": h["ppid"],
            "hostProcessId": host_pid,
            "hostThreadId": h["host_tid"],
            "hostParentProcessId": host_ppid,
            "userId": h["uid"],
            "mountNamespace": h["mnt_ns"],
            "pidNamespace": h["pid_ns"],
            "processName": h["comm"].split(b"\0", 1)[0].decode(errors="replace"),
            "executable": {"path": self._executable(host_pid, h["leader_start_time"], h["exe_gen"])},
            "hostName": h["uts"].split(b"\0", 1)[0].decode(errors="replace"),
            "containerId": container_id,
            "container": {"id": container_id} if container_id else {},
            "kubernetes": {},
            "eventId": "0",
            "eventName": "",
            "argsNum": 0,
            "returnValue": 0,
            "syscall": "",
            "stackAddresses": None,
            "contextFlags": {
                "containerStarted": bool(container_id) and (flags & _HDR_CG_STATE) in (_CG_EXISTED, _CG_STARTED),
                "isCompat": bool(flags & _HDR_COMPAT),
            },
            "threadEntityId": task_entity_id(h["host_tid"], start_epoch),
            "processEntityId": task_entity_id(host_pid, h["leader_start_time"] + offset),
            "parentEntityId": task_entity_id(host_ppid, h["parent_start_time"] + offset),
            "args": None,
        }

    def _header(self, buf: Any, off: int, size: int | None) -> tuple[int, int, int, int, int, _Plan]:
        """The record's end, timestamp, return value, event id, syscall number and decoding plan."""
        end = off + (len(buf) - off if size is None else size)
        if end - off < HEADER.size:
            raise ValueError(f"record of {end - off} bytes is shorter than the {HEADER.size}-byte header")
        ts, retval, ev_id, sysno = _VARYING.unpack_from(buf, off)
        plan = self._plans.get(ev_id)
        if plan is None:
            raise ValueError(f"unknown event id {ev_id} in record")
        return end, ts, retval, ev_id, sysno, plan

    def _cached_template(self, buf: Any, off: int, key: bytes) -> dict[str, Any]:
        """The context dict of the thread context ``key`` (built once; the cache is bounded)."""
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= TEMPLATE_CACHE_MAX:
                self._templates.clear()
            template = self._templates[key] = self._template(buf, off)
        return template

    def decode(self, buf: Any, off: int = 0, size: int | None = None) -> dict[str, Any]:
        """The trace.Event dict of the record at ``buf[off:off+size]`` (bytes, bytearray or mmap).

        The nested ``executable``, ``container``, ``kubernetes`` and ``contextFlags`` dicts
        are shared by the events of one thread context: treat them as read-only.
        """
        end, ts, retval, _, sysno, plan = self._header(buf, off, size)
        key = buf[off + _KEY_A : off + _KEY_B] + buf[off + _KEY_C : off + _KEY_D]
        template = self._cached_template(buf, off, key)
        args = plan.args(buf, off + HEADER.size, end, self.boot_to_epoch_ns)
        event = template.copy()
        event["timestamp"] = ts + self.boot_to_epoch_ns
        event["eventId"] = plan.id_str
        event["eventName"] = plan.name
        event["argsNum"] = len(args)
        event["returnValue"] = retval
        event["syscall"] = _SYSCALL_NAMES.get(sysno, "")
        event["args"] = args
        return event

    def decode_fast(self, buf: Any, off: int = 0, size: int | None = None) -> dict[str, Any]:
        """:meth:`decode`, by the C decoder where it is built and takes the record (the same dict)."""
        if _fastjson is not None and self.boot_to_epoch_ns >= 0:
            event = _fastjson.decode(buf, off, len(buf) - off if size is None else size, self._dict_state)
            if event is not None:
                return event
        return self.decode(buf, off, size)

    def ring_decoder(self) -> Callable[[Any, Any, int, int, int, list[Any]], int] | None:
        """The C loop over a BPF ring buffer's records giving :meth:`decode`'s dicts (as
        :meth:`ring_drainer` gives lines), or None without the C decoder."""
        if _fastjson is None or self.boot_to_epoch_ns < 0:
            return None
        drain, state, fallback = _fastjson.drain_ring_decode, self._dict_state, self.decode

        def drainer(data: Any, consumer: Any, page: int, mask: int, limit: int, out: list[Any]) -> int:
            return int(drain(data, consumer, page, mask, limit, state, fallback, out))

        return drainer

    def encode(self, buf: Any, off: int = 0, size: int | None = None) -> bytes | None:
        """The record as one JSON line (with its newline), as ``orjson.dumps`` of :meth:`decode`'s
        dict would print it; None when the line would need escaping (non-ASCII, DEL: see
        :func:`pytracee.engine.safetext.json_line`), which only the dict's printer does, and
        for the event ids in :attr:`dict_events`.

        The thread's context is encoded once and cached: per event, only the timestamp,
        return value, syscall and arguments are.
        """
        end, ts, retval, ev_id, sysno, plan = self._header(buf, off, size)
        if ev_id in self.dict_events:
            return None
        key = buf[off + _KEY_A : off + _KEY_B] + buf[off + _KEY_C : off + _KEY_D]
        parts = self._json_templates.get(key)
        if parts is None:
            template = self._cached_template(buf, off, key)
            if len(self._json_templates) >= TEMPLATE_CACHE_MAX:
                self._json_templates.clear()
            a = orjson.dumps({k: template[k] for k in _CONTEXT_A})
            b = orjson.dumps({k: template[k] for k in _CONTEXT_B})
            head, tail = b"," + a[1:-1] + b",", b[1:-1] + b',"args":'
            plain = (head + tail).isascii() and b"\x7f" not in head + tail
            parts = self._json_templates[key] = (head, tail, plain)
        line = _LINE % (
            ts + self.boot_to_epoch_ns,
            parts[0],
            plan.json_ids,
            retval,
            _SYSCALL_JSON.get(sysno, b'"",'),
            parts[1],
            plan.json_args(buf, off + HEADER.size, end, self.boot_to_epoch_ns),
        )
        if line.isascii() and b"\x7f" not in line:
            return line
        return None

    def context_event(self, buf: Any, off: int, ts: int) -> dict[str, Any]:
        """The event dict of the context in the event_header at ``buf[off:]`` (its id, name and
        arguments left for the caller), timestamped ``ts`` (boot ns). For records other than
        events that carry a header (bpf/capture.h's chunks)."""
        event = self._template(buf, off).copy()
        event["timestamp"] = ts + self.boot_to_epoch_ns
        h = HEADER.unpack_from(buf, off)
        event["syscall"] = _SYSCALL_NAMES.get(h[7], "")
        return event

    def encode_or_decode(self, buf: Any, off: int = 0, size: int | None = None) -> bytes | dict[str, Any]:
        """:meth:`encode`'s line, or :meth:`decode`'s dict where it gives none (the line from the
        C encoder where it is built and takes the record: the same bytes)."""
        if _fastjson is not None and self.boot_to_epoch_ns >= 0:
            line = _fastjson.encode(buf, off, len(buf) - off if size is None else size, self._fast_state)
            if line is not None:
                return line
        return self._encode_or_decode_python(buf, off, size)

    def _encode_or_decode_python(self, buf: Any, off: int = 0, size: int | None = None) -> bytes | dict[str, Any]:
        line = self.encode(buf, off, size)
        return line if line is not None else self.decode(buf, off, size)

    def ring_drainer(self) -> Callable[[Any, Any, int, int, int, list[Any]], int] | None:
        """The C loop over a BPF ring buffer's records giving :meth:`encode_or_decode`'s items
        (``(data, consumer, page, mask, limit, out) -> records skipped``; see
        :meth:`~pytracee.collector.ringbuf.RingBufferReader.drain_with`), or None without the
        C encoder."""
        if _fastjson is None or self.boot_to_epoch_ns < 0:
            return None
        drain, state, fallback = _fastjson.drain_ring, self._fast_state, self._encode_or_decode_python

        def drainer(data: Any, consumer: Any, page: int, mask: int, limit: int, out: list[Any]) -> int:
            return int(drain(data, consumer, page, mask, limit, state, fallback, out))

        return drainer
