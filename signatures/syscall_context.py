"""The syscall behind an LSM event, on its findings: ``Data["syscall_event"]``.

A finding raised on ``security_file_open``, ``security_bprm_check``,
``security_socket_connect``, ``security_inode_rename`` or ``security_sb_mount`` gets,
when the syscall that caused it is traced too, that syscall event's arguments as the
tracer read them::

    "syscall_event": {"name": "openat", "returnValue": 3, "timestamp": 1700000000000000000,
                      "args": {"dirfd": -100, "pathname": "/etc/shadow", "flags": 0, "mode": 0}}

so an analyst sees both sides: the kernel's (the LSM event) and the syscall's. The
two are paired by host thread (host process for exec, whose thread id may change)
and syscall name, in either arrival order: pytracee's collector sends the syscall
first; Tracee (and kprobes on the LSM hooks) send it after the LSM event but for
exec, and then, once the stream has shown that syscall traced (before that, an LSM
event is not paired), the LSM event is held
back until its syscall's event has gone to the signatures (at most :data:`HOLD_NS`
of event time, :data:`MAX_HELD` at once; the thread's next syscall or the end of
input releases it too). The pairing only looks at events that are traced anyway: an
engine observer (:meth:`Engine.observe`) sees them, it selects nothing. A pair is the LSM
event's :attr:`~pytracee.engine.Event.syscall_event`: it lives as long as the LSM event, and
nothing else keeps it. The tables of events waiting for their other half are bounded
(:data:`MAX_THREADS` threads and :data:`MAX_WAITING_BYTES` of events per table); once the table of syscall
events waiting for their LSM event is full, a syscall whose LSM event the stream has not shown
yet (a recording without ``security_bprm_check``), or has only ever paired before its syscall
(Tracee's order for open, connect, rename), no longer waits; without a release function
(:class:`SyscallContext` alone) an LSM event that comes first is paired with the
syscall event that follows only for findings raised after that.

Pairs are checked where the two events share an argument the tracer cannot get
wrong by a race (``connect``'s ``sockfd``), or a name (``rename``'s paths end in the
same components, ``mount``'s source); an open or exec pairs when it succeeded. An open's
path as passed (its ``pathname``, ``security_file_open``'s ``syscall_pathname``) tells the
stream's order, and two halves whose paths differ (a race on the buffer, or an earlier open of
the thread whose LSM event is missing, in Tracee's order) pair only when the stream has not
surely paired opens the other way round alone (:meth:`SyscallContext._this_call`). The
arguments read are declared (:data:`ARGS_READ`), so that a replay reads them in place. A
finding whose data already has ``syscall_event`` keeps it.

The plugin's hooks, which observe the run and enrich its findings, are in
:mod:`.syscall_context_hooks`: this module is compiled (``pytracee.engine.compiled``), and a
compiled function takes no ``@hookimpl`` marker.
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final

from pytracee.engine import Event, MalformedEventError

from .pairing import PendingEvents

__all__ = ["ARGS_READ", "DATA_KEY", "LSM_SYSCALLS", "MAX_THREADS", "SYSCALLS", "SyscallContext", "describe"]

#: The key findings carry the syscall event under.
DATA_KEY: Final = "syscall_event"
#: The LSM events and the syscalls that raise them.
LSM_SYSCALLS: Final[dict[str, frozenset[str]]] = {
    "security_file_open": frozenset({"open", "openat", "openat2", "creat", "open_by_handle_at"}),
    "security_bprm_check": frozenset({"execve", "execveat"}),
    "security_socket_connect": frozenset({"connect"}),
    "security_inode_rename": frozenset({"rename", "renameat", "renameat2"}),
    "security_sb_mount": frozenset({"mount"}),
}
#: The syscalls the context pairs with an LSM event (those of :data:`LSM_SYSCALLS`).
SYSCALLS: Final = frozenset().union(*LSM_SYSCALLS.values())
_LSM_OF: Final = {syscall: lsm for lsm, syscalls in LSM_SYSCALLS.items() for syscall in syscalls}
#: The arguments the pairing reads of each syscall's event (:func:`_same_call`): declared to the
#: engine, so that a replay reads them in place and leaves those events undecoded.
ARGS_READ: Final[dict[str, tuple[str, ...]]] = {
    **{syscall: ("pathname",) for syscall in LSM_SYSCALLS["security_file_open"]},
    "connect": ("sockfd",),
    **{syscall: ("newpath", "oldpath") for syscall in LSM_SYSCALLS["security_inode_rename"]},
    "mount": ("source",),
}
_EXEC: Final = frozenset({"execve", "execveat", "security_bprm_check"})
_OPENS: Final = LSM_SYSCALLS["security_file_open"]
#: Threads whose syscall event (or LSM event) waits for its other half, and bytes of their JSON:
#: the halves of one call come within a few events of each other, so only calls whose other
#: half is not traced stay, until pushed out.
MAX_THREADS: Final = 1024
MAX_WAITING_BYTES: Final = 4 << 20
#: An LSM event that came before its syscall's event waits for it at most this long in event
#: time (a blocking connect), and at most this many wait at once.
HOLD_NS: Final = 1_000_000_000
MAX_HELD: Final = 256


class SyscallContext:
    """Pairs LSM events with their syscall events as the engine sees them; answers for findings.

    :param release: hands a held LSM event back to the engine (:meth:`Engine.release`);
        without it nothing is held.
    """

    def __init__(self, release: Callable[[Event], None] | None = None) -> None:
        self._syscalls = PendingEvents(MAX_THREADS, MAX_WAITING_BYTES)
        self._lsm_waiting = PendingEvents(MAX_THREADS, MAX_WAITING_BYTES)
        self._release = release
        #: Syscalls seen in the stream: an LSM event of one of them waits for its syscall.
        self._traced: set[str] = set()
        #: Syscall names of the last LSM event of threads, for syscalls not seen traced.
        self._untraced_lsm: OrderedDict[Hashable, str] = OrderedDict()
        #: LSM events held back until their syscall event has been dispatched, oldest first.
        self._held: OrderedDict[Hashable, Event] = OrderedDict()
        #: LSM events seen in the stream: once the table of waiting syscall events is full, only
        #: syscalls whose LSM event the stream has shown are held (a recording without
        #: security_bprm_check would otherwise keep every execve until pushed out).
        self._lsm_seen: set[str] = set()
        #: LSM events the stream has surely paired after their syscall's event, and before it
        #: (:meth:`_this_call`): once the table is full, a syscall whose LSM event has only ever
        #: come first (Tracee's order for open, connect, rename) is not held either, since its LSM
        #: event will not come after it.
        self._lsm_came_second: set[str] = set()
        self._lsm_came_first: set[str] = set()

    def observe(self, event: Event) -> bool:
        """Engine observer: every LSM and syscall event, before the signatures see it.

        :returns: ``True`` to hold an LSM event back until its syscall's event has gone
            to the signatures (when the syscall is traced and comes second).
        """
        if event.source != "tracee":
            return False
        try:
            return self._observe(event)
        except MalformedEventError:
            return False  # rejected at its own turn by the engine

    def _observe(self, event: Event) -> bool:
        if self._held:
            self._release_expired(event.timestamp)
        name = event.name
        key = _pair_key(name, event.context_fields)
        if name in LSM_SYSCALLS:
            self._lsm_seen.add(name)
            syscall_event = self._syscalls.pop(key)
            if syscall_event is not None and _same_call(syscall_event, event) and self._this_call(syscall_event, event):
                self._remember(event, syscall_event)
                return False
            if event.syscall not in self._traced:
                # its syscall is not traced, or not seen yet: if it comes next on this thread, it
                # is this event's (Tracee's order), not one for a later LSM event
                marks = self._untraced_lsm
                if len(marks) >= MAX_THREADS:
                    marks.popitem(last=False)
                marks[key] = event.syscall
                return False
            if self._held:
                self._release_key(key)  # an earlier one of the thread waited in vain
            self._lsm_waiting.add(key, event)
            if self._release is None:
                return False
            event.args  # noqa: B018 - read now: a malformed event is rejected at its own turn
            if len(self._held) >= MAX_HELD:
                self._release_key(next(iter(self._held)))
            self._held[key] = event
            return True
        if name in SYSCALLS:
            self._traced.add(name)
            lsm_event = self._lsm_waiting.pop(key) if self._lsm_waiting else None
            if lsm_event is not None and _same_call(event, lsm_event) and self._this_call(event, lsm_event, first=True):
                self._remember(lsm_event, event)  # the kernel's event came first (Tracee's order)
            elif self._untraced_lsm and self._untraced_lsm.pop(key, None) == name:
                self._syscalls.pop(key)  # the partner of an LSM event that came before
            elif (name not in _OPENS or event.return_value >= 0) and self._may_wait(name):
                self._syscalls.add(key, event)
            else:
                self._syscalls.pop(key)  # a failed open raises no security_file_open
            if self._held:
                self._release_key(key)  # after this event: paired, or its partner was lost
        return False

    def idle(self, fields: Mapping[str, Any]) -> bool:
        """Whether a syscall event (its fields read in place: :data:`~pytracee.engine.events.LAZY_FIELDS`)
        could pair with nothing and would change nothing here, so a replay need not decode it: the
        stream pairs that syscall's LSM event before it only (Tracee's order) and none waits on its
        thread, so its LSM event came and went undecoded (left out by the signatures' filters);
        nothing is held, and the thread has neither a syscall event waiting nor a mark. It would
        otherwise only wait in vain, at best, or be taken by the thread's next LSM event."""
        name = fields.get("eventName")
        lsm = _LSM_OF.get(name)  # type: ignore[arg-type]
        if lsm is None or self._held or name not in self._traced:
            return False
        if lsm not in self._lsm_came_first or lsm in self._lsm_came_second:
            return False
        key = _pair_key(name, fields)
        try:
            return key not in self._lsm_waiting and key not in self._syscalls and key not in self._untraced_lsm
        except TypeError:  # an unhashable value: observed, and reported there
            return False

    def _this_call(self, syscall_event: Event, lsm_event: Event, *, first: bool = False) -> bool:
        """Whether two events of one thread and syscall (the LSM event ``first`` or second) are of
        one call. An open's path as passed differs between them in a race on its buffer (one call)
        or when one is another call's (a thread's earlier open whose LSM event is missing, in
        Tracee's order): taken for a race unless the stream has surely paired opens only the
        other way round. A pair whose path agrees (or that is not an open) teaches the order."""
        name = lsm_event.name
        agree = _path_agrees(syscall_event, lsm_event)
        this_way, other_way = (
            (self._lsm_came_first, self._lsm_came_second) if first else (self._lsm_came_second, self._lsm_came_first)
        )
        if agree is False:
            return name not in other_way or name in this_way
        if agree or name != "security_file_open":
            this_way.add(name)
        return True

    def _may_wait(self, syscall: str) -> bool:
        """Whether a syscall event may wait for its LSM event: while the table has room; then when
        the stream has shown that LSM event (it is traced) and not only ever before its syscall's."""
        if len(self._syscalls) < MAX_THREADS:
            return True
        lsm = _LSM_OF[syscall]
        return lsm in self._lsm_came_second or (lsm in self._lsm_seen and lsm not in self._lsm_came_first)

    def _release_key(self, key: Hashable) -> None:
        event = self._held.pop(key, None)
        if event is not None and self._release is not None:
            self._release(event)

    def _release_expired(self, now: int) -> None:
        held = self._held
        while held:
            key, event = next(iter(held.items()))
            if event.timestamp + HOLD_NS >= now:
                return
            self._release_key(key)

    def forget_order(self) -> None:
        """A replay's next input file, perhaps another tracer's: the order its pairs come in is
        learnt again (until then no syscall is :meth:`idle`). What waits or is held stays."""
        self._lsm_came_first.clear()
        self._lsm_came_second.clear()

    def release_all(self) -> None:
        """End of input: hand back every held event."""
        for key in list(self._held):
            self._release_key(key)

    @staticmethod
    def _remember(lsm_event: Event, syscall_event: Event) -> None:
        lsm_event.syscall_event = syscall_event  # kept no longer than the LSM event itself

    @staticmethod
    def syscall_of(event: Event) -> Event | None:
        """The syscall event paired with this LSM event, if any."""
        return event.syscall_event


def _pair_key(name: str, fields: Mapping[str, Any]) -> Hashable:
    """What the two halves of a call share: the host thread, or the host process for exec (whose
    thread id may change); from an event's context fields, as the observer and ``idle`` read them."""
    return ("process", fields.get("hostProcessId", 0)) if name in _EXEC else fields.get("hostThreadId", 0)


def _same_call(syscall_event: Event, lsm_event: Event) -> bool:
    if lsm_event.syscall != syscall_event.name or syscall_event.name not in LSM_SYSCALLS.get(lsm_event.name, ()):
        return False
    name = lsm_event.name
    if name == "security_socket_connect":
        return bool(syscall_event.arg("sockfd", None) == lsm_event.arg("sockfd", None))
    if name == "security_inode_rename":
        return _same_tail(syscall_event.str_arg("oldpath", ""), lsm_event.str_arg("old_path", "")) and _same_tail(
            syscall_event.str_arg("newpath", ""), lsm_event.str_arg("new_path", "")
        )
    if name == "security_sb_mount":
        return syscall_event.str_arg("source", "") == lsm_event.str_arg("dev_name", "")
    return True


def _path_agrees(syscall_event: Event, lsm_event: Event) -> bool | None:
    """For an open, whether the path passed is the same as the tracer and the LSM hook read it
    (``syscall_pathname``); None: not an open, or a path not read."""
    if lsm_event.name != "security_file_open":
        return None
    passed, seen = _str_arg(syscall_event, "pathname"), _str_arg(lsm_event, "syscall_pathname")
    return passed == seen if passed and seen else None


def _str_arg(event: Event, name: str) -> str:
    """Argument ``name`` when it is a string, else ``""`` (absent, unread, or of another type)."""
    value = event.arg(name, None)
    return value if type(value) is str else ""


def _same_tail(given: str, kernel: str) -> bool:
    """The path as given and the LSM event's (made absolute, perhaps resolved) end in the same name."""
    return posixpath.basename(given.rstrip("/")) == posixpath.basename(kernel.rstrip("/"))


def describe(syscall_event: Event) -> dict[str, Any]:
    """What a finding carries of the syscall event: name, return value, timestamp, arguments."""
    return {
        "name": syscall_event.name,
        "returnValue": syscall_event.return_value,
        "timestamp": syscall_event.timestamp,
        "args": dict(syscall_event.args),
    }
