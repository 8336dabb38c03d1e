"""The process tree: who started whom, kept from the event stream, for ancestry on findings.

:class:`ProcessTree` follows processes (thread-group leaders, by host pid) from
``sched_process_fork``, ``sched_process_exec`` and ``sched_process_exit``
(:data:`CONSUMED_EVENTS`), and learns the processes it has not seen start from the
context of every other event it is shown (``hostProcessId``, ``hostParentProcessId``,
``processName``, ``executable.path``), which is how a replay of a stream without fork
events still gets its ancestry. Live, :meth:`ProcessTree.seed_from_proc` first reads
the processes already running from ``/proc``.

A process is identified by its host pid *and* its start time (``processEntityId``,
Tracee's hash of both, when the events carry it), so a reused pid starts a new entry
and the children of the old process keep pointing at the old one. The tree is an LRU
bounded at ``max_processes`` (:data:`DEFAULT_MAX_PROCESSES`, as Tracee's
``process.max-processes``); an evicted process drops its own parent link, so the memory
stays bounded and ancestry stops at the first process evicted before its parent.

Signatures read it through the event (:attr:`~pytracee.engine.events.Event.process`)::

    grandparent = event.process.ancestor(2)
    if grandparent is not None and grandparent.comm in {"nginx", "httpd"}:
        ...
"""

from __future__ import annotations

import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..events import as_dict

__all__ = [
    "ARGS_READ",
    "ARGV_MAX_CHARS",
    "CONSUMED_EVENTS",
    "DEFAULT_MAX_PROCESSES",
    "FIELDS_READ",
    "ProcessInfo",
    "ProcessTree",
    "TreeStats",
    "task_entity_id",
]

#: The events the tree is kept from: a live run traces them whenever the tree is on,
#: and a replay must hand them on (every other event only refines the tree).
CONSUMED_EVENTS: Final = frozenset({"sched_process_fork", "sched_process_exec", "sched_process_exit"})
#: The top-level fields of an event the tree reads (``tracee-rules --workers`` reads only these of
#: another worker's forks, execs and exits).
FIELDS_READ: Final = (
    "eventName",
    "timestamp",
    "threadStartTime",
    "processId",
    "hostProcessId",
    "hostThreadId",
    "hostParentProcessId",
    "processEntityId",
    "parentEntityId",
    "userId",
    "processName",
    "executable",
    "container",
    "containerId",
)
#: The arguments the tree reads of each of the events it is kept from.
ARGS_READ: Final[dict[str, tuple[str, ...]]] = {
    "sched_process_fork": (
        "child_pid",
        "child_tid",
        "child_ns_pid",
        "child_ns_tid",
        "parent_process_pid",
        "parent_pid",
        "parent_process_start_time",
        "parent_start_time",
        "start_time",
    ),
    "sched_process_exec": ("pathname", "argv", "sha256", "inode", "ctime", "dev"),
    "sched_process_exit": ("process_group_exit",),
}
#: Processes kept (LRU), as Tracee's ``process.max-processes``.
DEFAULT_MAX_PROCESSES: Final = 10_000
#: argv kept per process: at most this many characters in all (the rest is cut, marked ``...``).
ARGV_MAX_CHARS: Final = 1024
#: Start times read from /proc have a clock tick's resolution: two start times this close
#: (plus the error of converting boot time to epoch time) are the same process.
_COARSE_TOLERANCE_NS: Final = 30_000_000


def _murmur32(data: bytes, seed: int = 0x18273645) -> int:
    """MurmurHash3 x86 32-bit (Tracee's HashU32AndU64)."""
    h = seed
    n = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: n * 4]):
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * 0x1B873593) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[n * 4 :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * 0x1B873593) & 0xFFFFFFFF
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def task_entity_id(host_id: int, start_time_epoch_ns: int) -> int:
    """Tracee's entity id of a task: murmur3 of (id, start time rounded to 10 ms), big endian."""
    rounded = start_time_epoch_ns // 10_000_000 * 10_000_000
    return _murmur32(struct.pack(">IQ", host_id & 0xFFFFFFFF, rounded & 0xFFFFFFFFFFFFFFFF))


def _bounded_argv(argv: Any) -> tuple[str, ...]:
    if not isinstance(argv, list):
        return ()
    kept: list[str] = []
    room = ARGV_MAX_CHARS
    for item in argv:
        if not isinstance(item, str):
            continue
        if len(item) > room:
            kept.append(item[:room] + "...")
            break
        kept.append(item)
        room -= len(item) + 1  # an item costs its separator too: a million empty ones are bounded
        if room <= 0:
            break
    return tuple(kept)


class ProcessInfo:
    """One process as the tree knows it (read-only for signatures).

    :ivar pid: host pid. :ivar ns_pid: pid in its own pid namespace (0: unknown).
    :ivar start_time: start time, epoch nanoseconds (0: unknown).
    :ivar comm: the task's comm (after its last exec). :ivar executable: the executed file's path.
    :ivar argv: its arguments at the last exec (bounded: :data:`ARGV_MAX_CHARS`).
    :ivar exit_time: when it exited (epoch ns), 0 while it runs.
    """

    __slots__ = (
        "_digest",
        "_entity",
        "argv",
        "coarse",
        "comm",
        "container_id",
        "exec_time",
        "executable",
        "exit_time",
        "ns_pid",
        "parent",
        "pid",
        "serial",
        "start_time",
        "uid",
    )

    def __init__(self, pid: int, start_time: int = 0, *, coarse: bool = False) -> None:
        self.pid = pid
        self.ns_pid = 0
        self.start_time = start_time
        self.coarse = coarse
        self._entity = 0  # Tracee's hash of (pid, start time): computed when first asked
        self.comm = ""
        self.executable = ""
        self.argv: tuple[str, ...] = ()
        self.exec_time = 0
        self.exit_time = 0
        self.uid = -1
        self.container_id = ""
        self.parent: ProcessInfo | None = None
        self._digest: Callable[[float], str | None] | str | None = None
        self.serial = 0

    # --- what signatures use ---------------------------------------------------------

    def ancestor(self, level: int) -> ProcessInfo | None:
        """The ancestor ``level`` generations up (1: the parent, 2: the grandparent), or None."""
        node: ProcessInfo | None = self
        for _ in range(level):
            if node is None:
                return None
            node = node.parent
        return node

    @property
    def entity_id(self) -> int:
        """Tracee's entity id (``processEntityId``): the stream's, or the hash of pid and start time."""
        if not self._entity and self.start_time and not self.coarse:
            self._entity = task_entity_id(self.pid, self.start_time)
        return self._entity

    @entity_id.setter
    def entity_id(self, value: int) -> None:
        self._entity = value

    @property
    def known(self) -> bool:
        """Something beyond the pid is known (a process seen only as a parent pid is not)."""
        return bool(self.comm or self.executable)

    def ancestors(self, depth: int = 64) -> list[ProcessInfo]:
        """Parent, grandparent, ... (nearest first), at most ``depth`` of them; the chain
        stops at a process known only by its pid."""
        out: list[ProcessInfo] = []
        node = self.parent
        seen = {id(self)}
        while node is not None and node.known and len(out) < depth and id(node) not in seen:
            seen.add(id(node))
            out.append(node)
            node = node.parent
        return out

    @property
    def sha256(self) -> str | None:
        """The sha256 of the executed file, when known (live: hashed in the background)."""
        return self.wait_sha256(0.0)

    def wait_sha256(self, timeout: float) -> str | None:
        """:attr:`sha256`, waiting up to ``timeout`` seconds for a hash still being computed."""
        digest = self._digest
        if digest is None or isinstance(digest, str):
            return digest
        value = digest(timeout)
        if value is not None:
            self._digest = value
        return value

    def to_dict(self, wait: float = 0.0) -> dict[str, Any]:
        """The JSON form used in findings' ``processAncestry``."""
        return {
            "pid": self.pid,
            "nsPid": self.ns_pid,
            "startTime": self.start_time,
            "entityId": self.entity_id,
            "comm": self.comm,
            "executable": {"path": self.executable, "sha256": self.wait_sha256(wait) or ""},
            "argv": list(self.argv),
            "exitTime": self.exit_time,
        }

    def __repr__(self) -> str:
        return f"<ProcessInfo pid={self.pid} comm={self.comm!r} exe={self.executable!r} start={self.start_time}>"


@dataclass(slots=True)
class TreeStats:
    """Counters of a :class:`ProcessTree`."""

    forks: int = 0
    execs: int = 0
    exits: int = 0
    learned: int = 0  # processes first seen in another event's context
    seeded: int = 0
    pid_reuses: int = 0
    evicted: int = 0


class ProcessTree:
    """Processes and their parents, kept from events (see the module docstring).

    :param max_processes: LRU bound; the least recently seen process goes first.
    :param learn_from_context: learn unknown processes from any event's context.
    :param on_exec: called with ``(process, event_raw)`` after an exec updated a
        process (the executable hasher hooks in here).
    """

    def __init__(
        self,
        max_processes: int = DEFAULT_MAX_PROCESSES,
        *,
        learn_from_context: bool = True,
        on_exec: Callable[[ProcessInfo, Mapping[str, Any]], None] | None = None,
    ) -> None:
        if max_processes < 1:
            raise ValueError("max_processes must be at least 1")
        self.max_processes = max_processes
        self.learn_from_context = learn_from_context
        self.on_exec = on_exec
        self.stats = TreeStats()
        self._lru: OrderedDict[int, ProcessInfo] = OrderedDict()  # serial -> process
        self._current: dict[int, ProcessInfo] = {}  # host pid -> its latest process
        self._serial = 0
        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
            "sched_process_fork": self._on_fork,
            "sched_process_exec": self._on_exec,
            "sched_process_exit": self._on_exit,
        }

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def by_pid(self) -> Mapping[int, ProcessInfo]:
        """The latest process of each host pid (read-only). ``tracee-rules --workers``'s compiled
        record scanner looks up other workers' events here (a process's ``comm`` and ``_entity``,
        as :meth:`knows` does) to skip those whose process is known."""
        return self._current

    def __iter__(self) -> Iterator[ProcessInfo]:
        return iter(list(self._lru.values()))

    # --- feeding -------------------------------------------------------------------------

    def observe(self, raw: Mapping[str, Any], args: Mapping[str, Any] | None = None) -> None:
        """Update the tree from one event (its JSON object, or a mapping holding at least its
        fields named in :data:`FIELDS_READ`); never raises on odd values.

        :param args: the event's arguments as ``{name: value}`` when the caller has them
            already (:attr:`.Event.args`, or those in :data:`ARGS_READ`); read from ``raw`` otherwise.
        """
        fields = as_dict(raw)
        handler = self._handlers.get(fields.get("eventName"))  # type: ignore[arg-type]
        if handler is None:
            if self.learn_from_context and not self.knows(fields):
                self.learn(fields)
            return
        try:
            handler(fields, _args(fields) if args is None else as_dict(args))
        except (TypeError, ValueError, AttributeError):  # a hostile or odd record: the tree learns nothing
            return

    def learn(self, raw: Mapping[str, Any]) -> None:
        """Learn the process of an event that is not a fork, exec or exit from its context (for a
        process :meth:`knows` does not know); never raises on odd values."""
        try:
            self._context_process(as_dict(raw))
        except (TypeError, ValueError, AttributeError):  # a hostile or odd record: the tree learns nothing
            return

    def knows(self, fields: Mapping[str, Any]) -> bool:
        """Whether the process of an event that is not a fork, exec or exit is known already, so its
        context would teach the tree nothing (reads ``hostProcessId`` and ``processEntityId``)."""
        read = as_dict(fields)
        try:
            node = self._current.get(read.get("hostProcessId"))  # type: ignore[arg-type]
        except TypeError:  # an unhashable value: not known
            return False
        if node is None or not node.comm:
            return False
        entity = read.get("processEntityId")
        return not entity or entity == node._entity

    def _add(self, pid: int, start: int, *, coarse: bool = False, entity: int = 0) -> ProcessInfo:
        node = ProcessInfo(pid, start, coarse=coarse)
        if entity:
            node._entity = entity
        old = self._current.get(pid)
        if old is not None and old.exit_time == 0 and old is not node:
            self.stats.pid_reuses += 1
        self._current[pid] = node
        self._serial += 1
        node.serial = self._serial
        lru = self._lru
        lru[node.serial] = node
        while len(lru) > self.max_processes:
            _, gone = lru.popitem(last=False)
            self.stats.evicted += 1
            if self._current.get(gone.pid) is gone:
                del self._current[gone.pid]
            gone.parent = None  # bounded: an evicted process keeps no ancestors alive
        return node

    def _touch(self, node: ProcessInfo) -> None:
        if node.serial in self._lru:
            self._lru.move_to_end(node.serial)

    @staticmethod
    def _same(node: ProcessInfo, start: int, entity: int) -> bool:
        """Whether ``node`` is the process started at ``start`` (or with ``entity``); unknowns match."""
        if start and node.start_time:
            if node.coarse:
                return abs(node.start_time - start) < _COARSE_TOLERANCE_NS
            return node.start_time == start
        if entity and node.entity_id:
            return node.entity_id == entity
        return True

    def find(self, pid: int, start: int = 0, entity: int = 0) -> ProcessInfo | None:
        """The process with host pid ``pid`` (started at ``start`` / with entity id ``entity`` when given)."""
        node = self._current.get(pid)
        if node is not None and self._same(node, start, entity):
            return node
        return None

    def _refine(self, node: ProcessInfo, start: int, entity: int) -> None:
        if start and (node.coarse or not node.start_time):
            node.start_time, node.coarse = start, False
            node.entity_id = 0  # recomputed from the exact start when asked
        elif entity and not node.entity_id:
            node.entity_id = entity

    def _process(self, pid: int, start: int, entity: int, *, created: bool = False) -> ProcessInfo:
        """The process (pid, start), created when unknown or when the pid was reused."""
        node = self.find(pid, start, entity)
        if node is None:
            node = self._add(pid, start, entity=entity)
            if not created:
                self.stats.learned += 1
        else:
            self._refine(node, start, entity)
        return node

    def _context_process(self, raw: dict[str, Any]) -> ProcessInfo | None:
        """The event's process, learned from its context (and its parent, by pid) when new."""
        pid = raw.get("hostProcessId")
        if not pid or type(pid) is not int:
            return None
        entity = raw.get("processEntityId") or 0
        start = raw.get("threadStartTime", 0) if raw.get("hostThreadId") == pid else 0
        node = self._current.get(pid)
        if node is not None and self._same(node, start, entity):
            if start and (node.coarse or not node.start_time):
                self._refine(node, start, entity)
            if entity:  # the stream's own entity ids are the ones its later events carry
                node.entity_id = entity
            if not node.comm:
                self._fill(node, raw)
            return node
        node = self._add(pid, start, entity=entity)
        self.stats.learned += 1
        self._fill(node, raw)
        ppid = raw.get("hostParentProcessId")
        if ppid and type(ppid) is int and ppid != pid:
            parent = self.find(ppid, 0, raw.get("parentEntityId") or 0)
            if parent is None:
                parent = self._add(ppid, 0, entity=raw.get("parentEntityId") or 0)
                self.stats.learned += 1
            node.parent = parent
        return node

    @staticmethod
    def _fill(node: ProcessInfo, raw: dict[str, Any]) -> None:
        comm = raw.get("processName")
        if isinstance(comm, str):
            node.comm = comm
        executable = raw.get("executable")
        if isinstance(executable, dict) and isinstance(executable.get("path"), str) and executable["path"]:
            node.executable = executable["path"]
        ns_pid = raw.get("processId")
        if type(ns_pid) is int:
            node.ns_pid = ns_pid
        uid = raw.get("userId")
        if type(uid) is int:
            node.uid = uid
        container = raw.get("container")
        cid = container.get("id") if isinstance(container, dict) else raw.get("containerId")
        if isinstance(cid, str):
            node.container_id = cid

    def _on_fork(self, raw: dict[str, Any], args: dict[str, Any]) -> None:
        child = args.get("child_pid") or args.get("child_tid")
        if not child or type(child) is not int:
            return
        child_tid = args.get("child_tid", child)
        parent_pid = args.get("parent_process_pid") or args.get("parent_pid") or raw.get("hostProcessId")
        if child_tid != child:
            return  # a new thread, not a new process
        self.stats.forks += 1
        parent_start = _int(args.get("parent_process_start_time") or args.get("parent_start_time"))
        parent: ProcessInfo | None
        if parent_pid == raw.get("hostProcessId"):  # the forking process: its context names its own parent
            parent = self._context_process(raw)
            if parent is not None and parent_start:
                self._refine(parent, parent_start, 0)
        else:
            parent = self._process(_int(parent_pid), parent_start, 0) if parent_pid else None
        start = _int(args.get("start_time"))
        node = self.find(child, start, 0) if start else None
        if node is None:
            node = self._add(child, start)
        else:
            self._refine(node, start, 0)
        node.parent = parent
        node.ns_pid = _int(args.get("child_ns_pid") or args.get("child_ns_tid"))
        if parent is not None:  # a fork copies the parent's image
            node.comm, node.executable, node.argv = parent.comm, parent.executable, parent.argv
            node.uid, node.container_id, node._digest = parent.uid, parent.container_id, parent._digest
        else:
            self._fill(node, raw)
        if parent is not None:
            self._touch(parent)

    def _on_exec(self, raw: dict[str, Any], args: dict[str, Any]) -> None:
        node = self._context_process(raw)
        if node is None:
            return
        self.stats.execs += 1
        self._fill(node, raw)
        path = args.get("pathname")
        if isinstance(path, str) and path:
            node.executable = path
        node.argv = _bounded_argv(args.get("argv"))
        node.exec_time = _int(raw.get("timestamp"))
        digest = args.get("sha256")
        node._digest = digest if isinstance(digest, str) and digest else None
        self._touch(node)
        if self.on_exec is not None:
            self.on_exec(node, args)

    def _on_exit(self, raw: dict[str, Any], args: dict[str, Any]) -> None:
        pid = raw.get("hostProcessId")
        if not pid or type(pid) is not int:
            return
        group_exit = args.get("process_group_exit")
        if group_exit is False or (group_exit is None and raw.get("hostThreadId", pid) != pid):
            return  # one thread ended, not the process
        node = self._context_process(raw)
        if node is not None:
            self.stats.exits += 1
            node.exit_time = _int(raw.get("timestamp")) or 1

    # --- looking up ------------------------------------------------------------------------

    def process_of(self, raw: Mapping[str, Any]) -> ProcessInfo | None:
        """The process of an event (learning it from the event's context when unknown)."""
        try:
            return self._context_process(as_dict(raw))
        except (TypeError, ValueError, AttributeError):
            return None

    # --- live: what runs already ---------------------------------------------------------

    def seed_from_proc(self, proc: Path = Path("/proc")) -> int:
        """Add the processes running now, parents first; returns how many were added."""
        boot_to_epoch = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        found: dict[int, tuple[int, int, str]] = {}
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            close = stat.rfind(b")")
            fields = stat[close + 2 :].split()
            comm = stat[stat.find(b"(") + 1 : close].decode(errors="replace")
            try:
                found[int(entry.name)] = (int(fields[1]), int(fields[19]) * tick_ns + boot_to_epoch, comm)
            except (IndexError, ValueError):
                continue
        added: dict[int, ProcessInfo] = {}

        def add(pid: int, depth: int = 0) -> ProcessInfo | None:
            if pid in added or pid not in found:
                return added.get(pid)
            ppid, start, comm = found[pid]
            parent = add(ppid, depth + 1) if ppid and depth < 256 else None
            node = self._add(pid, start, coarse=True)
            node.comm, node.parent = comm, parent
            try:
                node.executable = os.readlink(proc / str(pid) / "exe")
            except OSError:
                pass
            try:
                cmdline = (proc / str(pid) / "cmdline").read_bytes()[: ARGV_MAX_CHARS * 2]
                node.argv = _bounded_argv([part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]])
            except OSError:
                pass
            added[pid] = node
            return node

        for pid in sorted(found):
            add(pid)
        self.stats.seeded += len(added)
        return len(added)


def _args(raw: Mapping[str, Any]) -> dict[str, Any]:
    args = raw.get("args")
    if type(args) is not list:
        return {}
    return {arg["name"]: arg.get("value") for arg in args if isinstance(arg, dict) and isinstance(arg.get("name"), str)}


def _int(value: Any) -> int:
    return value if type(value) is int else 0
