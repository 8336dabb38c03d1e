"""The syscall context's plugin hooks: observe the run's syscall and LSM events
(:class:`~.syscall_context.SyscallContext`), and put the syscall event on the findings
raised on an LSM event (``Data["syscall_event"]``). Built-in plugin ``builtin-syscall-context``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytracee.engine import Event, Finding, hookimpl

from .syscall_context import ARGS_READ, DATA_KEY, LSM_SYSCALLS, SYSCALLS, SyscallContext, describe

if TYPE_CHECKING:
    from pytracee.engine.session import Session

__all__ = ["tracee_finding_enrich", "tracee_sessionstart"]


@hookimpl
def tracee_sessionstart(session: Session) -> None:
    """Observe the syscalls and LSM events of the run."""
    if session.engine is None:
        return
    context = SyscallContext(session.engine.release)
    session.engine.observe(
        [*LSM_SYSCALLS, *sorted(SYSCALLS)],
        context.observe,
        at_end=context.release_all,
        at_next_input=context.forget_order,
        args_read=ARGS_READ,
        idle=context.idle,
    )


@hookimpl
def tracee_finding_enrich(finding: Finding) -> None:
    """Add ``syscall_event`` to findings raised on an LSM event whose syscall was traced."""
    event = finding.event
    if not isinstance(event, Event) or event.name not in LSM_SYSCALLS:
        return
    if finding.data is not None and DATA_KEY in finding.data:
        return
    syscall_event = event.syscall_event
    if syscall_event is not None:
        finding.data = dict(finding.data or {}, **{DATA_KEY: describe(syscall_event)})
