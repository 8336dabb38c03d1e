"""Built-in signatures of the MITRE ATT&CK tactic *Defense Evasion* (``Category: defense-evasion``).

Ports of Tracee v0.24.1: anti-debugging (TRC-102), code injection through
ptrace, ``/proc/<pid>/mem`` and ``process_vm_writev`` (TRC-103, TRC-1024,
TRC-1025), dynamic code loading (TRC-104), fileless execution (TRC-105),
default loader modification (TRC-1012), hidden and dropped executables
(TRC-1015, TRC-1022) and kernel rootkit hooks (TRC-1020, TRC-1030; the latter
also on Tracee v0.8-v0.18's ``hooked_syscalls`` events: see :mod:`._eras`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Final

from pytracee.engine import (
    ArgumentError,
    Event,
    Signature,
    SignatureContext,
    SignatureMetadata,
    is_elf,
    mem_prot_alert,
    ptrace_request,
    select,
)
from pytracee.engine.parsers import (
    MEMORY_PATH_PREFIXES,
    PROT_ALERT_MPROTECT_WX_TO_X,
    PTRACE_POKEDATA,
    PTRACE_POKETEXT,
    PTRACE_TRACEME,
)

from ._common import (
    FILE_OPEN,
    PROC_MEM_PATTERNS,
    PROC_MEM_RE,
    SCHED_PROCESS_EXEC,
    mitre_properties,
    opened_path,
    write_selectors,
    written_path,
)
from ._eras import MAX_HELD, recorded_only

__all__ = [
    "AntiDebugging",
    "DefaultLoaderModification",
    "DroppedExecutable",
    "DynamicCodeLoading",
    "FilelessExecution",
    "HiddenFileCreated",
    "ProcFopsHooking",
    "ProcMemCodeInjection",
    "ProcessVmWriteCodeInjection",
    "PtraceCodeInjection",
    "SyscallTableHooking",
]


#: Library directories holding the dynamic loader (TRC-1012).
LOADER_DIRS: Final = ("/lib", "/usr/lib")
#: Start of the loader's file name (ld-linux-x86-64.so.2, ld-2.31.so, ...).
LOADER_NAME_MARK: Final = "/ld"
# Tracee's `^\/(lib|usr\/lib).*\/ld.*\.so[^\/]*`, built from the two constants above.
_LOADER_RE: Final = re.compile(
    "(?:" + "|".join(map(re.escape, LOADER_DIRS)) + ").*" + re.escape(LOADER_NAME_MARK) + r".*\.so[^/]*"
)
# Every match contains LOADER_NAME_MARK. Filtering on it rather than on the
# LOADER_DIRS prefixes lets the many opens of ordinary libraries in /usr/lib
# through the engine's gate untouched.
_LOADER_PATTERNS: Final = [f"*{LOADER_NAME_MARK}*"]

#: TRC-1015: a path element starting with a dot.
HIDDEN_PATH_MARK: Final = "/."

_PTRACE_POKE: Final = frozenset({PTRACE_POKETEXT, PTRACE_POKEDATA})


class AntiDebugging(Signature):
    """TRC-102: ``ptrace(PTRACE_TRACEME)``, the classic anti-debugging trick."""

    metadata = SignatureMetadata(
        id="TRC-102",
        version="1",
        name="Anti-Debugging detected",
        event_name="anti_debugging",
        description=(
            "A process used anti-debugging techniques to block a debugger. Malware use anti-debugging to stay "
            "invisible and inhibit analysis of their behavior."
        ),
        properties=mitre_properties(
            severity=1,
            category="defense-evasion",
            technique="Debugger Evasion",
            external_id="T1622",
            attack_pattern="attack-pattern--e4dc8c01-417f-458d-9ee0-bb0617c1b391",
        ),
    )
    selected_events = [select("ptrace")]

    def on_event(self, event: Event) -> None:
        if event.name == "ptrace" and event.parsed_arg("request", ptrace_request) == PTRACE_TRACEME:
            self.emit(event)


class PtraceCodeInjection(Signature):
    """TRC-103: ``ptrace(PTRACE_POKETEXT/POKEDATA)`` writing into another process."""

    metadata = SignatureMetadata(
        id="TRC-103",
        version="1",
        name="Code injection detected using ptrace",
        event_name="ptrace_code_injection",
        description=(
            "Possible code injection into another process was detected. Code injection is an exploitation "
            "technique used to run malicious code, adversaries may use it in order to execute their malware."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Ptrace System Calls",
            external_id="T1055.008",
            attack_pattern="attack-pattern--ea016b56-ae0e-47fe-967a-cc0ad51af67f",
        ),
    )
    selected_events = [select("ptrace")]

    def on_event(self, event: Event) -> None:
        if event.name == "ptrace" and event.parsed_arg("request", ptrace_request) in _PTRACE_POKE:
            self.emit(event)


class DynamicCodeLoading(Signature):
    """TRC-104: a memory region changed from writable+executable to executable."""

    metadata = SignatureMetadata(
        id="TRC-104",
        version="1",
        name="Dynamic code loading detected",
        event_name="dynamic_code_loading",
        description=(
            "Possible dynamic code loading was detected as the binary's memory is both writable and executable. "
            "Writing to an executable allocated memory region could be a technique used by adversaries to run "
            "code undetected and without dropping executables."
        ),
        properties=mitre_properties(
            severity=2,
            category="defense-evasion",
            technique="Software Packing",
            external_id="T1027.002",
            attack_pattern="attack-pattern--deb98323-e13f-4b0c-8d94-175379069062",
        ),
    )
    selected_events = [select("mem_prot_alert")]

    def on_event(self, event: Event) -> None:
        if event.name == "mem_prot_alert" and event.parsed_arg("alert", mem_prot_alert) == PROT_ALERT_MPROTECT_WX_TO_X:
            self.emit(event)


class FilelessExecution(Signature):
    """TRC-105: a program executed from memory (memfd, /dev/shm, /run/shm)."""

    metadata = SignatureMetadata(
        id="TRC-105",
        version="1",
        name="Fileless execution detected",
        event_name="fileless_execution",
        description=(
            "Fileless execution was detected. Executing a process from memory instead from a file in the "
            "filesystem may indicate that an adversary is trying to avoid execution detection."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Reflective Code Loading",
            external_id="T1620",
            attack_pattern="attack-pattern--4933e63b-9b77-476e-ab29-761bc5b7d15a",
        ),
    )
    selected_events = [select(SCHED_PROCESS_EXEC, pathname=[p + "*" for p in MEMORY_PATH_PREFIXES])]

    def on_event(self, event: Event) -> None:
        if event.name == SCHED_PROCESS_EXEC and event.str_arg("pathname").startswith(MEMORY_PATH_PREFIXES):
            self.emit(event)


class DefaultLoaderModification(Signature):
    """TRC-1012: the dynamic loader (``/lib*/ld*.so*``) opened for writing or replaced by a rename."""

    metadata = SignatureMetadata(
        id="TRC-1012",
        version="1",
        name="Default dynamic loader modification detected",
        event_name="default_loader_mod",
        description=(
            "The default dynamic loader has been modified. The dynamic loader is an executable file loaded to "
            "process memory and run before the executable to load dynamic libraries to the process. An attacker "
            "might use this technique to hijack the execution context of each new process and bypass defenses."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Hijack Execution Flow",
            external_id="T1574",
            attack_pattern="attack-pattern--aedfca76-3b30-4866-b2aa-0f1d7fd1e4b6",
        ),
    )
    selected_events = write_selectors(_LOADER_PATTERNS)

    def on_event(self, event: Event) -> None:
        path = written_path(event)
        if path is not None and _LOADER_RE.match(path):
            self.emit(event)


class HiddenFileCreated(Signature):
    """TRC-1015: an ELF file written to a hidden path (one with a ``/.`` element)."""

    metadata = SignatureMetadata(
        id="TRC-1015",
        version="1",
        name="Hidden executable creation detected",
        event_name="hidden_file_created",
        description=(
            "A hidden executable (ELF file) was created on disk. This activity could be legitimate; however, it "
            "could indicate that an adversary is trying to avoid detection by hiding their programs."
        ),
        properties=mitre_properties(
            severity=2,
            category="defense-evasion",
            technique="Hidden Files and Directories",
            external_id="T1564.001",
            attack_pattern="attack-pattern--ec8fc7e2-b356-455c-8db5-2e37be158e7d",
        ),
    )
    selected_events = [select("magic_write", pathname=f"*{HIDDEN_PATH_MARK}*")]

    def on_event(self, event: Event) -> None:
        if event.name != "magic_write":
            return
        data = event.bytes_arg("bytes")
        if is_elf(data) and HIDDEN_PATH_MARK in event.str_arg("pathname"):
            self.emit(event)


class ProcFopsHooking(Signature):
    """TRC-1020: a rootkit replaced file-operation pointers of the proc filesystem."""

    metadata = SignatureMetadata(
        id="TRC-1020",
        version="1",
        name="File operations hooking on proc filesystem detected",
        event_name="proc_fops_hooking",
        description=(
            "File operations hooking on proc filesystem detected. The proc filesystem is an interface for the "
            "running processes as files. This allows programs like `ps` and `top` to check what are the running "
            "processes. File operations are the functions defined on a file or directory. File operations hooking"
            " includes replacing the default function used to perform a basic task on files and directories like "
            "enumerating files. By hooking the file operations of /proc an adversary gains control on certain "
            "system function, such as file listing or other basic function performed by the operation system. The"
            " adversary may also hijack the execution flow and execute it's own code. File operation hooking is "
            "considered a malicious behavior that is performed by rootkits and may indicate that the host's "
            "kernel has been compromised. Hidden modules are marked as hidden symbol owners and indicate further "
            "malicious activity of an adversary."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Rootkit",
            external_id="T1014",
            attack_pattern="attack-pattern--0f20e3cb-245b-4a61-8a91-2d93f7cb0e9b",
        ),
    )
    selected_events = [select("hooked_proc_fops", origin="host")]

    def on_event(self, event: Event) -> None:
        if event.name != "hooked_proc_fops":
            return
        hooked = _list_arg(event, "hooked_fops_pointers")
        if hooked:
            self.emit(event, {"Hooked proc file operations": hooked})


class DroppedExecutable(Signature):
    """TRC-1022: an ELF file written to disk (not to memory) inside a container."""

    metadata = SignatureMetadata(
        id="TRC-1022",
        version="1",
        name="New executable dropped",
        event_name="dropped_executable",
        description=(
            "An Executable file was dropped in the system during runtime. Container images are usually built with"
            " all binaries needed inside. A dropped binary may indicate that an adversary infiltrated your "
            "container."
        ),
        properties=mitre_properties(
            severity=2,
            category="defense-evasion",
            technique="Masquerading",
            external_id="T1036",
            attack_pattern="attack-pattern--42e8de7b-37b2-4258-905a-6897815e58e0",
        ),
    )
    selected_events = [select("magic_write", origin="container")]

    def on_event(self, event: Event) -> None:
        if event.name != "magic_write":
            return
        data = event.bytes_arg("bytes")
        pathname = event.str_arg("pathname")
        if is_elf(data) and not pathname.startswith(MEMORY_PATH_PREFIXES):
            self.emit(event, {"path": pathname})


class ProcMemCodeInjection(Signature):
    """TRC-1024: ``/proc/<pid>/mem`` opened for writing."""

    metadata = SignatureMetadata(
        id="TRC-1024",
        version="1",
        name="Code injection detected through /proc/<pid>/mem file",
        event_name="proc_mem_code_injection",
        description=(
            "Possible code injection into another process was detected. Code injection is an exploitation "
            "technique used to run malicious code, adversaries may use it in order to execute their malware."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Proc Memory",
            external_id="T1055.009",
            attack_pattern="attack-pattern--d201d4cc-214d-4a74-a1ba-b3fa09fd4591",
        ),
    )
    selected_events = [select(FILE_OPEN, pathname=PROC_MEM_PATTERNS)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=True)
        if path is not None and PROC_MEM_RE.search(path):
            self.emit(event)


class ProcessVmWriteCodeInjection(Signature):
    """TRC-1025: ``process_vm_writev`` into another process."""

    metadata = SignatureMetadata(
        id="TRC-1025",
        version="1",
        name="Code injection detected using process_vm_writev syscall",
        event_name="process_vm_write_inject",
        description=(
            "Possible code injection into another process was detected. Code injection is an exploitation "
            "technique used to run malicious code, adversaries may use it in order to execute their malware."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Process Injection",
            external_id="T1055",
            attack_pattern="attack-pattern--43e7dc91-05b2-474c-b9ac-2ed4fe101f4d",
        ),
    )
    selected_events = [select("process_vm_writev")]

    def on_event(self, event: Event) -> None:
        if event.name == "process_vm_writev" and event.int_arg("pid") != event.process_id:
            self.emit(event)


class SyscallTableHooking(Signature):
    """TRC-1030: a syscall table entry hooked (Tracee reports each as ``hooked_syscall``)."""

    metadata = SignatureMetadata(
        id="TRC-1030",
        version="1",
        name="Syscall table hooking detected",
        event_name="syscall_hooking",
        description=(
            "Syscall table hooking detected. Syscalls (system calls) are the interface between user applications "
            "and the kernel. By hooking the syscall table an adversary gains control on certain system function, "
            "such as file writing and reading or other basic function performed by the operation system. The "
            "adversary may also hijack the execution flow and execute it's own code. Syscall table hooking is "
            "considered a malicious behavior that is performed by rootkits and may indicate that the host's "
            "kernel has been compromised. Hidden modules are marked as hidden symbol owners and indicate further "
            "malicious activity of an adversary."
        ),
        properties=mitre_properties(
            severity=3,
            category="defense-evasion",
            technique="Rootkit",
            external_id="T1014",
            attack_pattern="attack-pattern--0f20e3cb-245b-4a61-8a91-2d93f7cb0e9b",
        ),
    )
    selected_events = [
        select("hooked_syscall"),
        # Tracee v0.8-v0.18: one event listing every hook, [{"SymbolName", "ModuleOwner"}, ...]
        recorded_only(select("hooked_syscalls")),
    ]

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        # (syscall, owner) -> the era that reported it, so the other era does not report it again
        self._reported: OrderedDict[tuple[str, str], str] = OrderedDict()

    def on_event(self, event: Event) -> None:
        if event.name == "hooked_syscall":
            key = _hook_key(event)
            if key is None or self._first_report(key, "hooked_syscall"):
                self.emit(event)
        elif event.name == "hooked_syscalls":
            for hook in _list_arg(event, "hooked_syscalls"):  # each hook is a finding, as each is one event today
                syscall, owner = _old_hook(hook)
                if self._first_report((syscall, owner), "hooked_syscalls"):
                    self.emit(event, {"syscall": syscall, "owner": owner})

    def _first_report(self, key: tuple[str, str], era: str) -> bool:
        """False when the other era's event already reported this hook."""
        reported = self._reported
        first = reported.setdefault(key, era)
        if first != era:
            return False
        if len(reported) > MAX_HELD:
            reported.popitem(last=False)
        return True


def _hook_key(event: Event) -> tuple[str, str] | None:
    """(syscall, owner) of a ``hooked_syscall`` event: its ``syscall``/``owner`` arguments,
    or one map argument as in Tracee's unit tests; None when it names neither."""
    syscall, owner = event.arg("syscall", None), event.arg("owner", None)
    if syscall is None:
        value = event.arg("hooked_syscall", None)
        if isinstance(value, dict):
            syscall, owner = value.get("syscall_name"), value.get("hooked.owner")
    if not isinstance(syscall, str):
        return None
    return syscall, owner if isinstance(owner, str) else ""


def _old_hook(hook: Any) -> tuple[str, str]:
    """(syscall, owner) of one entry of ``hooked_syscalls`` (Tracee's ``HookedSymbolData``)."""
    if isinstance(hook, dict):
        return str(hook.get("SymbolName", "")), str(hook.get("ModuleOwner", ""))
    return str(hook), ""


def _list_arg(event: Event, name: str) -> list[Any]:
    value = event.arg(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArgumentError(f"{event.name} argument {name!r} is not a list: {value!r}")
    return value
