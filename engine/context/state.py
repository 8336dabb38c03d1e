"""The context kept across events: process tree, container identities, executable hashes.

An :class:`EventContext` is built per run by the context plugin
(:mod:`~pytracee.engine.context.plugin`) from :class:`ContextSettings`. The session
shows it every event before dispatch (:meth:`EventContext.observe`), which

* keeps the :class:`~pytracee.engine.context.proctree.ProcessTree` (and, live, asks the
  :class:`~pytracee.engine.context.exehash.ExecHasher` for the hash of each executed file);
* writes the container's identity into the event when the
  :class:`~pytracee.engine.context.containers.ContainerResolver` has it (never waiting);
* links the event to the context, so signatures can read ``event.process``.

:attr:`EventContext.consumed_events` declares the events it needs besides those the
signatures select (the tree's fork/exec/exit): ``tracee`` traces them, and a replay
that skips events must still decode them. Findings get their context in
:meth:`EventContext.enrich_finding` (``processAncestry``, ``executable.sha256``, the
container fields), waiting at most ``finding_wait`` seconds for a lookup under way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..errors import MalformedEventError
from .containers import DEFAULT_TTL, ContainerResolver, container_id
from .exehash import DEFAULT_MAX_SIZE, ExecHasher
from .proctree import CONSUMED_EVENTS, DEFAULT_MAX_PROCESSES, ProcessInfo, ProcessTree
from .runtimes import RuntimeClient

if TYPE_CHECKING:
    from ..events import Event
    from ..findings import Finding

__all__ = ["ANCESTRY_KEY", "DEFAULT_ANCESTRY_DEPTH", "ContextSettings", "EventContext"]

#: The key of a finding's ``Context`` that holds the ancestry (parent first).
ANCESTRY_KEY: Final = "processAncestry"
#: Ancestors written on findings unless configured.
DEFAULT_ANCESTRY_DEPTH: Final = 5
#: Longest a finding waits for a container lookup or a hash still under way.
DEFAULT_FINDING_WAIT: Final = 0.5

#: Containers remembered as waited for (then forgotten all at once).
_WAITED_MAX: Final = 4096

log = logging.getLogger("pytracee.context")


@dataclass
class ContextSettings:
    """What context a run keeps (see ``--proctree``, ``--ancestry-depth``, ``--containers``, ``--exec-hash``)."""

    proctree: bool = True
    max_processes: int = DEFAULT_MAX_PROCESSES
    seed_from_proc: bool = False
    ancestry_depth: int = DEFAULT_ANCESTRY_DEPTH
    containers: bool = False
    sockets: dict[str, str] = field(default_factory=dict)
    container_ttl: float = DEFAULT_TTL
    exec_hash: bool = False
    exec_hash_max_size: int = DEFAULT_MAX_SIZE
    finding_wait: float = DEFAULT_FINDING_WAIT


class EventContext:
    """The per-run context (see the module docstring)."""

    def __init__(self, settings: ContextSettings, clients: list[RuntimeClient] | None = None) -> None:
        self.settings = settings
        self.hasher = ExecHasher(settings.exec_hash_max_size) if settings.exec_hash else None
        self.tree = (
            ProcessTree(settings.max_processes, on_exec=self._hash_exec if self.hasher is not None else None)
            if settings.proctree
            else None
        )
        self.containers = ContainerResolver(clients or [], ttl=settings.container_ttl) if settings.containers else None
        if self.tree is not None and settings.seed_from_proc:
            count = self.tree.seed_from_proc()
            log.debug("process tree: %d processes read from /proc", count)
        self._waited_containers: set[str] = set()

    @property
    def consumed_events(self) -> frozenset[str]:
        """Events this context needs decoded and traced, whether or not a signature selects them."""
        return CONSUMED_EVENTS if self.tree is not None else frozenset()

    # --- per event ---------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Learn from ``event`` and enrich it (called once per event, before dispatch)."""
        event.context = self
        tree = self.tree
        if tree is not None:
            fields = event.context_fields  # (a LazyEvent's: enough to tell whether its process is known)
            name = fields.get("eventName")
            if name in CONSUMED_EVENTS:  # fork, exec, exit: read by their arguments, decoded once for all
                try:
                    args: Mapping[str, Any] | None = event.args
                except MalformedEventError:  # the engine rejects it at dispatch; the tree reads what it can
                    args = None
                tree.observe(event.fields, args)
                if self.hasher is not None and name == "sched_process_exec" and self._add_hash_arg(tree, event.raw):
                    event._args = None  # read again with the sha256 argument
            elif tree.learn_from_context and not tree.knows(fields):
                tree.learn(event.fields)
        containers = self.containers
        if containers is not None:
            raw = event.fields
            if raw.get("containerId") or raw.get("container"):
                containers.enrich(raw)

    def learns_nothing_from(self, fields: Mapping[str, Any]) -> bool:
        """Whether observing an event that is not a fork, exec or exit, with these context fields
        (read in place: its ``hostProcessId`` and ``processEntityId``), would teach this context
        nothing: its process is known already, and no container resolver looks at events."""
        if self.containers is not None:
            return False
        tree = self.tree
        return tree is None or not tree.learn_from_context or tree.knows(fields)

    def observe_fields(self, fields: Mapping[str, Any], args: Mapping[str, Any]) -> None:
        """Learn from an event only the process tree reads (under ``--workers``, another shard's
        fork, exec or exit): its fields named in :data:`~pytracee.engine.context.proctree.FIELDS_READ`
        and its arguments named in :data:`~pytracee.engine.context.proctree.ARGS_READ`."""
        if self.tree is not None:
            self.tree.observe(fields, args)

    def _hash_exec(self, process: ProcessInfo, args: Mapping[str, Any]) -> None:
        hasher = self.hasher
        if hasher is None or process.wait_sha256(0) is not None:
            return
        inode, ctime, dev = args.get("inode"), args.get("ctime"), args.get("dev")
        if type(inode) is not int or not inode:
            return
        key = (dev if type(dev) is int else 0, inode, ctime if type(ctime) is int else 0)
        roots = [ancestor.pid for ancestor in process.ancestors(3)]  # their root reaches the same files
        process._digest = hasher.request(key, process.pid, process.executable, roots)

    @staticmethod
    def _add_hash_arg(tree: ProcessTree, raw: dict[str, Any]) -> bool:
        """Tracee's ``sha256`` argument on an exec event, when the file's hash is known already
        (True when it was added)."""
        process = tree.find(raw.get("hostProcessId", 0))
        digest = process.wait_sha256(0) if process is not None else None
        args = raw.get("args")
        if digest and type(args) is list and not any(type(a) is dict and a.get("name") == "sha256" for a in args):
            args.append({"name": "sha256", "type": "const char*", "value": digest})
            raw["argsNum"] = len(args)
            return True
        return False

    def process_of(self, event: Event) -> ProcessInfo | None:
        """The event's process in the tree (None without a tree)."""
        return self.tree.process_of(event.fields) if self.tree is not None else None

    # --- per finding -------------------------------------------------------------------

    def enrich_finding(self, finding: Finding) -> None:
        """Write the ancestry, the executable's hash and the container's identity into the finding's context."""
        raw = finding.event.raw
        wait = self.settings.finding_wait
        containers = self.containers
        if containers is not None:
            cid = container_id(raw)
            if cid and not containers.enrich(raw) and cid not in self._waited_containers:
                if len(self._waited_containers) >= _WAITED_MAX:
                    self._waited_containers.clear()
                self._waited_containers.add(cid)  # one wait per container: a hung runtime stalls no more
                if containers.wait(cid, wait) is not None:
                    containers.enrich(raw)
        process = self.process_of(finding.event)
        if process is None:
            return
        digest = process.wait_sha256(wait if self.hasher is not None else 0.0)
        executable = raw.get("executable")
        if digest is not None:
            base = executable if isinstance(executable, dict) else {"path": process.executable}
            raw["executable"] = {**base, "sha256": digest}
        depth = self.settings.ancestry_depth
        if depth > 0:
            ancestry = [ancestor.to_dict() for ancestor in process.ancestors(depth)]
            if ancestry:  # omitted when empty, as Go's omitempty
                raw[ANCESTRY_KEY] = ancestry

    def describe(self) -> str:
        """One line on what the context did, for the summary."""
        parts = []
        if self.tree is not None:
            stats = self.tree.stats
            parts.append(
                f"process tree: {len(self.tree)} processes ({stats.forks} forks, {stats.execs} execs, "
                f"{stats.exits} exits, {stats.learned} learned, {stats.seeded} from /proc, {stats.evicted} evicted)"
            )
        if self.containers is not None and self.containers.counts:
            parts.append("containers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.containers.counts.items())))
        if self.hasher is not None and self.hasher.counts:
            parts.append("executable hashes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.hasher.counts.items())))
        return "; ".join(parts)

    def close(self) -> None:
        """Stop the background threads."""
        if self.containers is not None:
            self.containers.close()
        if self.hasher is not None:
            self.hasher.close()
