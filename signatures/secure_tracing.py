"""Secure tracing: catch syscall arguments that changed between the tracer's read and the kernel's.

A tracer reads a syscall's arguments from user memory when the syscall starts; the
kernel copies them a moment later. A second thread of the process can swap the
buffer in between (a time-of-check/time-of-use race), so the syscall event shows a
harmless path while the kernel executes another. The kernel's own view is in the
events raised inside the exec: ``sched_process_exec`` carries ``cmdpath``, the
filename the kernel copied, and ``security_bprm_check`` the file it checked.

:class:`ExecArgumentTampering` pairs them per process, whichever comes first (our
collector submits ``execve`` when the syscall returns, after the kernel's events;
a tracer that submits it at entry sends it before), and compares the syscall's
``pathname`` with the kernel's ``cmdpath``. The finding is raised on the kernel's
event (the one that tells the truth); its data names the originating syscall and
both paths.
"""

from __future__ import annotations

import logging
from typing import Final

import orjson
from pytracee.engine import Event, Signature, SignatureContext, SignatureMetadata, SourceComplete, select
from pytracee.engine.params import Param

__all__ = ["ExecArgumentTampering"]

log = logging.getLogger("pytracee.signatures")

_EXEC_SYSCALLS: Final = ("execve", "execveat")
#: Exec events of processes whose other half has not come yet, per table; bounded by count
#: and by size so that lost or forged halves cannot make the tables grow without end.
MAX_PENDING: Final = 4096
MAX_PENDING_BYTES: Final = 16 << 20


class ExecArgumentTampering(Signature):
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
        properties={
            "Severity": 3,
            "Category": "defense-evasion",
            "Technique": "Impair Defenses",
            "Kubernetes_Technique": "",
            "id": "attack-pattern--3d333250-30e4-4a82-9edc-756c68afc529",
            "external_id": "T1562",
        },
    )
    selected_events = [select("sched_process_exec"), select("execve"), select("execveat")]

    parameters = {
        "max_pending": Param(MAX_PENDING, "unpaired exec events remembered per table (the oldest forgotten first)"),
        "max_pending_mib": Param(MAX_PENDING_BYTES >> 20, "MiB of unpaired exec events remembered per table"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        limits = (self.params.max_pending, self.params.max_pending_mib << 20)
        self._kernel_view = _Pending(*limits)
        self._syscall_view = _Pending(*limits)

    def on_event(self, event: Event) -> None:
        pid = event.host_process_id
        if event.name == "sched_process_exec":
            syscall_event = self._syscall_view.pop(pid)
            if syscall_event is None:
                self._kernel_view.add(pid, event)
            else:
                self._compare(syscall_event, event)
        elif event.name in _EXEC_SYSCALLS and event.return_value == 0:
            kernel_event = self._kernel_view.pop(pid)
            if kernel_event is None:
                self._syscall_view.add(pid, event)
            else:
                self._compare(event, kernel_event)

    def _compare(self, event: Event, kernel_event: Event) -> None:
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

    def on_signal(self, signal: SourceComplete) -> None:
        forgotten = self._kernel_view.forgotten + self._syscall_view.forgotten
        if forgotten:
            log.warning(
                "%s: %d exec events were forgotten unpaired (tables full: %d events or %d MiB each); "
                "tampering with those execs was not checked",
                self.metadata.id,
                forgotten,
                self.params.max_pending,
                self.params.max_pending_mib,
            )
        self._kernel_view.clear()
        self._syscall_view.clear()


class _Pending:
    """Events waiting for their other half, by host pid: the oldest go first when the
    table holds :data:`MAX_PENDING` events or :data:`MAX_PENDING_BYTES` of event JSON."""

    __slots__ = ("_bytes", "_events", "forgotten", "max_bytes", "max_events")

    def __init__(self, max_events: int = MAX_PENDING, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self.max_events = max(max_events, 1)
        self.max_bytes = max_bytes
        self._events: dict[int, tuple[Event, int]] = {}
        self._bytes = 0
        #: Events pushed out by newer ones before their other half came.
        self.forgotten = 0

    def add(self, pid: int, event: Event) -> None:
        self.pop(pid)
        size = len(event.text) if event.text is not None else len(orjson.dumps(event.raw, default=str))
        events = self._events
        while events and (len(events) >= self.max_events or self._bytes + size > self.max_bytes):
            self._bytes -= events.pop(next(iter(events)))[1]  # the oldest
            self.forgotten += 1
        events[pid] = (event, size)
        self._bytes += size

    def pop(self, pid: int) -> Event | None:
        entry = self._events.pop(pid, None)
        if entry is None:
            return None
        self._bytes -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._events.clear()
        self._bytes = 0
        self.forgotten = 0

    @property
    def size(self) -> int:
        """Bytes of event JSON held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._events)
