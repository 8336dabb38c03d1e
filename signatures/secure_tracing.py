"""Secure tracing: catch syscall arguments that changed between the tracer's read and the kernel's.

A tracer reads a syscall's arguments from user memory when the syscall starts; the
kernel copies them a moment later. A second thread of the process can swap the
buffer in between (a time-of-check/time-of-use race), so the syscall event shows a
harmless argument while the kernel acts on another. Each signature here pairs the
syscall event (the tracer's read) with the event that carries the kernel's view of
the same call, per thread (per process for exec, whose thread id may change), in
either arrival order, and reports a difference on the kernel's event. An event
without that id (only a damaged record lacks it) is paired with nothing, and
counted in a warning at the end of the input.

* PYT-1 (execve): ``sched_process_exec``'s ``cmdpath`` is the filename the kernel
  copied; it must equal the syscall's ``pathname``.
* PYT-2 (open): ``security_file_open``'s ``pathname`` is the file the kernel opened
  (its path rebuilt from the dentries: symlinks, ``..`` and ``/proc/self/fd`` links
  resolved). That path differs from the one passed for many honest reasons, and the
  kernel's copy of the string is not visible to tracepoints, so PYT-2 reports only
  when the tracer has proof of a change: its own two reads of the path (the syscall
  event's at entry, ``syscall_pathname`` at exit) differ, *and* the opened file's
  name is not the last component of the path the syscall event shows.
* PYT-3 (connect): ``security_socket_connect``'s ``remote_addr`` is the socket's peer
  address when the connect returned (0 or EINPROGRESS); it must equal the syscall's
  ``addr`` (IPv4/IPv6 address and port; abstract UNIX names; a UNIX path is not
  compared: the peer's name is the one its server bound, which may differ honestly).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Hashable
from typing import Any, Final

from pytracee.engine import (
    ArgumentError,
    Event,
    Signature,
    SignatureContext,
    SignatureMetadata,
    SourceComplete,
    select,
)
from pytracee.engine.params import Param
from pytracee.engine.parsers import SockAddr

from .pairing import MAX_PENDING, MAX_PENDING_BYTES, PendingEvents

__all__ = [
    "MAX_PENDING",
    "MAX_PENDING_BYTES",
    "ConnectArgumentTampering",
    "ExecArgumentTampering",
    "OpenArgumentTampering",
]

log = logging.getLogger("pytracee.signatures")

_EXEC_SYSCALLS: Final = ("execve", "execveat")
_OPEN_SYSCALLS: Final = ("open", "openat", "openat2", "creat")
EINPROGRESS: Final = 115
#: Events held at most for an other half of a kind the stream has not shown yet. The two halves
#: of a call come within a few events of each other, so this many waiting in vain mean the other
#: kind is not traced (a recording without connect): more would only keep decoded events alive.
MAX_HELD_UNSEEN: Final = 256

_PROPERTIES: Final = {
    "Severity": 3,
    "Category": "defense-evasion",
    "Technique": "Impair Defenses",
    "Kubernetes_Technique": "",
    "id": "attack-pattern--3d333250-30e4-4a82-9edc-756c68afc529",
    "external_id": "T1562",
}


class _SyscallKernelPairs(Signature):
    """Pairs a syscall event with the kernel's event of the same call; subclasses compare them."""

    #: Names of the syscalls and of the kernel's event.
    syscalls: tuple[str, ...] = ()
    kernel_event: str = ""
    #: The field :meth:`key` reads (named in the warning about events without it).
    key_field: str = "hostThreadId"
    parameters = {
        "max_pending": Param(MAX_PENDING, "unpaired events remembered per table (the oldest forgotten first)"),
        "max_pending_mib": Param(MAX_PENDING_BYTES >> 20, "MiB of unpaired events remembered per table"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        limits = (max(self.params.max_pending, 1), self.params.max_pending_mib << 20)
        self._kernel_view = PendingEvents(*limits)
        self._syscall_view = PendingEvents(*limits)
        # which halves the stream has shown: past MAX_HELD_UNSEEN, an event whose other half the
        # stream never showed is not held (a recording without connect would otherwise push every
        # security_socket_connect through the table); such events are counted
        self._seen_kernel = self._seen_syscall = False
        self._not_held = 0
        self._without_key = 0

    def key(self, event: Event) -> Hashable:
        """What pairs the two events: the host thread."""
        return event.host_thread_id

    def wanted(self, syscall_event: Event) -> bool:
        """Whether a pair is worth comparing, by its syscall event (one that succeeded, by default)."""
        return syscall_event.return_value >= 0

    def same_call(self, syscall_event: Event, kernel_event: Event) -> bool:
        """Whether the kernel's event was raised in this syscall (it names it, by default)."""
        return kernel_event.syscall == syscall_event.name

    def on_event(self, event: Event) -> None:
        key = self.key(event)
        if not key:  # no thread (or process) to pair by: a damaged record would pair with any other such
            self._without_key += 1
            return
        if event.name == self.kernel_event:
            self._seen_kernel = True
            syscall_event = self._syscall_view.pop(key)
            if syscall_event is None or not self.same_call(syscall_event, event):
                self._hold(self._kernel_view, key, event, self._seen_syscall)
            elif self.wanted(syscall_event):
                self.compare(syscall_event, event)
        else:  # every call is paired, so that one left unchecked cannot take another's kernel event
            self._seen_syscall = True
            kernel_event = self._kernel_view.pop(key)
            if kernel_event is None or not self.same_call(event, kernel_event):
                self._hold(self._syscall_view, key, event, self._seen_kernel)
            elif self.wanted(event):
                self.compare(event, kernel_event)

    @property
    def _event_names(self) -> str:
        """The events paired, as the warnings name them (``connect/security_socket_connect``)."""
        return "/".join((*self.syscalls[:2], self.kernel_event))

    def _hold(self, table: PendingEvents, key: Hashable, event: Event, other_half_seen: bool) -> None:
        """Hold ``event`` for its other half: once the stream has shown events of the other
        half's kind, else while fewer than :data:`MAX_HELD_UNSEEN` (and the table's room) wait."""
        if other_half_seen or len(table) < min(table.max_events, MAX_HELD_UNSEEN):
            table.add(key, event)
        else:
            self._not_held += 1

    def compare(self, event: Event, kernel_event: Event) -> None:
        raise NotImplementedError

    def on_signal(self, signal: SourceComplete) -> None:
        forgotten = self._kernel_view.forgotten + self._syscall_view.forgotten
        if forgotten or self._not_held:
            log.warning(
                "%s: %d %s events were forgotten unpaired (%d pushed out of full tables of %d events "
                "or %d MiB; %d not held: the stream showed none of their other half while %d waited); "
                "tampering with those calls was not checked",
                self.metadata.id,
                forgotten + self._not_held,
                self._event_names,
                forgotten,
                self.params.max_pending,
                self.params.max_pending_mib,
                self._not_held,
                min(self.params.max_pending, MAX_HELD_UNSEEN),
            )
        if self._without_key:
            log.warning(
                "%s: %d %s events had no %s and were not paired; tampering with those calls was not checked",
                self.metadata.id,
                self._without_key,
                self._event_names,
                self.key_field,
            )
        self._kernel_view.clear()
        self._syscall_view.clear()
        self._seen_kernel = self._seen_syscall = False
        self._not_held = 0
        self._without_key = 0


class ExecArgumentTampering(_SyscallKernelPairs):
    """PYT-1: the path a process passed to execve changed before the kernel read it."""

    metadata = SignatureMetadata(
        id="PYT-1",
        version="1",
        name="Syscall argument tampering detected",
        event_name="syscall_argument_tampering",
        description=(
            "The pathname a process passed to execve differs from the one the kernel executed: the argument "
            "was changed in memory between the syscall's start and the kernel's copy (a TOCTOU race), a "
            "technique to hide the executed program from tracers that read syscall arguments."
        ),
        properties=dict(_PROPERTIES),
    )
    selected_events = [select("sched_process_exec"), select("execve"), select("execveat")]
    syscalls = _EXEC_SYSCALLS
    kernel_event = "sched_process_exec"
    key_field = "hostProcessId"

    def key(self, event: Event) -> Hashable:
        return event.host_process_id  # an exec from another thread takes over the leader's id

    def wanted(self, syscall_event: Event) -> bool:
        return syscall_event.return_value == 0

    def same_call(self, syscall_event: Event, kernel_event: Event) -> bool:
        return True  # one exec at a time per process; recordings may lack the syscall's name

    def compare(self, event: Event, kernel_event: Event) -> None:
        claimed = event.str_arg("pathname")
        executed = kernel_event.str_arg("cmdpath")
        if not claimed or not executed:
            return  # the tracer could not read the argument (a page not yet in memory): nothing to compare
        if event.name == "execveat" and not claimed.startswith("/"):
            return  # execveat relative to a dirfd, or fexecve: the kernel names the file /dev/fd/N/...
        if claimed != executed:
            self.emit(
                kernel_event,
                {
                    "syscall": event.name,
                    "syscall pathname": claimed,
                    "kernel pathname": executed,
                    "executed file": kernel_event.str_arg("pathname", ""),
                },
            )


class OpenArgumentTampering(_SyscallKernelPairs):
    """PYT-2: the path a process passed to open changed while the kernel opened another file."""

    metadata = SignatureMetadata(
        id="PYT-2",
        version="1",
        name="Open path tampering detected",
        event_name="open_argument_tampering",
        description=(
            "The pathname a process passed to open/openat changed in memory while the syscall ran, and the "
            "kernel opened a file whose name is not the one the tracer read: a TOCTOU race on the syscall's "
            "argument, a technique to hide the file really opened from tracers that read syscall arguments."
        ),
        properties=dict(_PROPERTIES),
    )
    selected_events = [select("security_file_open"), *(select(name) for name in _OPEN_SYSCALLS)]
    #: Off unless asked for (``--rules PYT-2``): live, it has every open traced twice.
    enabled_by_default = False
    syscalls = _OPEN_SYSCALLS
    kernel_event = "security_file_open"

    def compare(self, event: Event, kernel_event: Event) -> None:
        claimed = event.str_arg("pathname", "")
        at_exit = kernel_event.str_arg("syscall_pathname", "")
        opened = kernel_event.str_arg("pathname", "")
        if not claimed or not at_exit or not opened or claimed == at_exit:
            return  # no proof that the buffer changed: symlinks, "..", /proc/self/fd, renames explain the rest
        claimed_name = _last_component(claimed)
        if claimed_name in ("", ".", ".."):
            return
        opened_name = posixpath.basename(opened)
        if opened_name == claimed_name or opened_name.casefold() == claimed_name.casefold():
            return  # the kernel opened the file the tracer read (case-insensitive file systems too)
        self.emit(
            kernel_event,
            {
                "syscall": event.name,
                "syscall pathname": claimed,
                "pathname at syscall exit": at_exit,
                "kernel pathname": opened,
                "dev": kernel_event.arg("dev", 0),
                "inode": kernel_event.arg("inode", 0),
            },
        )


def _last_component(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else ""


class ConnectArgumentTampering(_SyscallKernelPairs):
    """PYT-3: the address a process passed to connect is not the peer the kernel connected to."""

    metadata = SignatureMetadata(
        id="PYT-3",
        version="1",
        name="Connect address tampering detected",
        event_name="connect_argument_tampering",
        description=(
            "The address a process passed to connect differs from the peer the kernel connected the socket "
            "to: the sockaddr was changed in memory between the syscall's start and the kernel's copy (a "
            "TOCTOU race), a technique to hide the real destination from tracers that read syscall arguments."
        ),
        properties=dict(_PROPERTIES),
    )
    selected_events = [select("security_socket_connect"), select("connect")]
    syscalls = ("connect",)
    kernel_event = "security_socket_connect"

    def wanted(self, syscall_event: Event) -> bool:
        return syscall_event.return_value in (0, -EINPROGRESS)  # the kernel's peer is known only then

    def compare(self, event: Event, kernel_event: Event) -> None:
        if event.arg("sockfd", None) != kernel_event.arg("sockfd", None):
            return  # not the same call
        try:
            claimed = event.sockaddr_arg("addr")
            peer = kernel_event.sockaddr_arg("remote_addr")
        except ArgumentError:
            return
        if _same_destination(claimed, peer):
            return
        self.emit(
            kernel_event,
            {
                "syscall": event.name,
                "syscall address": _describe(claimed),
                "kernel address": _describe(peer),
            },
        )


#: What the kernel connects to for the "any" address (ip_route_connect: the loopback).
_ANY_ADDRESS: Final = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - compared, not bound


def _same_destination(claimed: SockAddr, peer: SockAddr) -> bool:
    """True unless the two addresses surely differ (a UNIX path is never said to differ)."""
    if claimed.family != peer.family:
        return False
    if claimed.is_internet:
        ip = _ANY_ADDRESS.get(claimed.ip, claimed.ip)
        return peer.ip in (ip, claimed.ip) and str(claimed.port) == str(peer.port)
    if claimed.is_unix:
        if claimed.path.startswith("@") and peer.path.startswith("@"):
            return claimed.path == peer.path  # abstract names are matched exactly by the kernel
        return True  # a path: the server's bind name, relative or through symlinks, may differ honestly
    return True


def _describe(address: SockAddr) -> dict[str, Any]:
    if address.is_internet:
        return {"family": address.family, "ip": address.ip, "port": address.port}
    return {"family": address.family, "path": address.path}
