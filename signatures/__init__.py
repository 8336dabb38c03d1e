"""The built-in signatures: Python ports of Tracee v0.24.1's 31 Go signatures, and pytracee's own.

They are grouped by MITRE ATT&CK tactic (the ``Category`` property):
:mod:`.defense_evasion`, :mod:`.privilege_escalation`, :mod:`.persistence`,
:mod:`.credential_access`, :mod:`.execution` (remote command execution:
TRC-101 and the initial-access TRC-1016) and :mod:`.discovery`. Each keeps
Tracee's ID, metadata, selected events and detection logic, accepts raw and
``parse-arguments`` argument values, and declares engine data filters so that
uninteresting events are rejected before any signature runs.

:mod:`.secure_tracing` holds PYT-1, PYT-2 and PYT-3, which compare a syscall's
arguments with the kernel's view of them (:data:`PYTRACEE_SIGNATURES`); PYT-2 is
``enabled_by_default = False`` (it needs every open traced twice).

:data:`BUILTIN_SIGNATURES` lists Tracee's in ID order; the plugin hook
:func:`tracee_register_signatures` registers them with the engine. TRC-108 is
``enabled_by_default = False``: Tracee v0.24.1 did not ship it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pytracee.engine import Signature, hookimpl

from .credential_access import (
    K8sCertificateTheft,
    K8sServiceAccountToken,
    ProcMemAccess,
)
from .defense_evasion import (
    AntiDebugging,
    DefaultLoaderModification,
    DroppedExecutable,
    DynamicCodeLoading,
    FilelessExecution,
    HiddenFileCreated,
    ProcessVmWriteCodeInjection,
    ProcFopsHooking,
    ProcMemCodeInjection,
    PtraceCodeInjection,
    SyscallTableHooking,
)
from .discovery import K8sApiConnection, SchedDebugRecon
from .execution import IllegitimateShell, StdioOverSocket
from .persistence import (
    KernelModuleLoading,
    LdPreload,
    RcdModification,
    ScheduledTaskModification,
)
from .privilege_escalation import (
    AslrInspection,
    CgroupNotifyOnReleaseModification,
    CgroupReleaseAgentModification,
    CorePatternModification,
    DiskMount,
    DockerAbuse,
    ProcKcoreRead,
    SudoersModification,
    SystemRequestKeyConfigModification,
)
from .secure_tracing import ConnectArgumentTampering, ExecArgumentTampering, OpenArgumentTampering

__all__ = ["BUILTIN_SIGNATURES", "PYTRACEE_SIGNATURES", "tracee_register_signatures"]

#: Every built-in signature class, in ID order (TRC-101 … TRC-1031).
BUILTIN_SIGNATURES: Final[tuple[type[Signature], ...]] = (
    StdioOverSocket,  # TRC-101
    AntiDebugging,  # TRC-102
    PtraceCodeInjection,  # TRC-103
    DynamicCodeLoading,  # TRC-104
    FilelessExecution,  # TRC-105
    CgroupNotifyOnReleaseModification,  # TRC-106
    LdPreload,  # TRC-107
    K8sServiceAccountToken,  # TRC-108 (disabled by default)
    AslrInspection,  # TRC-109
    CgroupReleaseAgentModification,  # TRC-1010
    CorePatternModification,  # TRC-1011
    DefaultLoaderModification,  # TRC-1012
    K8sApiConnection,  # TRC-1013
    DiskMount,  # TRC-1014
    HiddenFileCreated,  # TRC-1015
    IllegitimateShell,  # TRC-1016
    KernelModuleLoading,  # TRC-1017
    K8sCertificateTheft,  # TRC-1018
    DockerAbuse,  # TRC-1019
    ProcFopsHooking,  # TRC-1020
    ProcKcoreRead,  # TRC-1021
    DroppedExecutable,  # TRC-1022
    ProcMemAccess,  # TRC-1023
    ProcMemCodeInjection,  # TRC-1024
    ProcessVmWriteCodeInjection,  # TRC-1025
    RcdModification,  # TRC-1026
    ScheduledTaskModification,  # TRC-1027
    SudoersModification,  # TRC-1028
    SchedDebugRecon,  # TRC-1029
    SyscallTableHooking,  # TRC-1030
    SystemRequestKeyConfigModification,  # TRC-1031
)

#: Built-in signatures of pytracee's own, beyond Tracee's set.
PYTRACEE_SIGNATURES: Final[tuple[type[Signature], ...]] = (
    ExecArgumentTampering,  # PYT-1: secure tracing, syscall vs kernel view of execve
    OpenArgumentTampering,  # PYT-2: of open (disabled by default)
    ConnectArgumentTampering,  # PYT-3: of connect
)


@hookimpl
def tracee_register_signatures(register: Callable[[Any], None]) -> None:
    """Register every built-in signature class: Tracee's, then pytracee's own."""
    for signature_class in (*BUILTIN_SIGNATURES, *PYTRACEE_SIGNATURES):
        register(signature_class)
