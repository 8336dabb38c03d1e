"""Built-in signatures of the MITRE ATT&CK tactic *Persistence* (``Category: persistence``).

Ports of Tracee v0.24.1: LD_PRELOAD injection (TRC-107), kernel module
loading (TRC-1017, also on the events of Tracee v0.8 to v0.19: see
:mod:`._eras`), and changes to boot scripts (rc.d, TRC-1026) and scheduled
tasks (cron, TRC-1027).
"""

from __future__ import annotations

from typing import Final

from pytracee.engine import Event, Signature, SignatureContext, SignatureMetadata, select
from pytracee.engine.params import Param

from ._common import (
    SCHED_PROCESS_EXEC,
    ModificationSignature,
    PathRule,
    mitre_properties,
    write_selectors,
    written_path,
)
from ._eras import HoldsOlderFindings, RecentActions, process_key, recorded_only

__all__ = ["KernelModuleLoading", "LdPreload", "RcdModification", "ScheduledTaskModification"]

#: Environment variables that make the dynamic loader load extra libraries (TRC-107).
PRELOAD_ENV_VARS: Final = ("LD_PRELOAD", "LD_LIBRARY_PATH")
LD_SO_PRELOAD: Final = PathRule(suffixes=("/etc/ld.so.preload",))

RCD_SCRIPTS: Final = PathRule(
    files=("/etc/rc.local", "/etc/init.d/rc.local"),
    prefixes=(
        "/etc/rc1.d",
        "/etc/rc2.d",
        "/etc/rc3.d",
        "/etc/rc4.d",
        "/etc/rc5.d",
        "/etc/rc6.d",
        "/etc/rcs.d",
        "/etc/init.d",
        "/etc/rc.d/rc.local",
        "/etc/rc.d/init.d",
        "/etc/rc.d",
    ),
)
RCD_COMMANDS: Final = frozenset({"update-rc.d"})

CRON_FILES: Final = PathRule(
    files=("/etc/crontab", "/etc/anacrontab", "/etc/cron.deny", "/etc/cron.allow"),
    prefixes=(
        "/etc/cron.hourly",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.monthly",
        "/etc/cron.d",
        "/var/spool/cron/crontabs",
        "var/spool/anacron",  # sic: relative in Tracee, so it never matches a kernel path
    ),
)
CRON_COMMANDS: Final = frozenset({"crontab", "at", "batch", "launchd"})


class LdPreload(Signature):
    """TRC-107: a program run with LD_PRELOAD/LD_LIBRARY_PATH, or ``/etc/ld.so.preload`` written."""

    metadata = SignatureMetadata(
        id="TRC-107",
        version="1",
        name="LD_PRELOAD code injection detected",
        event_name="ld_preload",
        description=(
            "LD_PRELOAD usage was detected. LD_PRELOAD lets you load your library before any other library, "
            "allowing you to hook functions in a process. Adversaries may use this technique to change your "
            "applications' behavior or load their own programs."
        ),
        properties=mitre_properties(
            severity=2,
            category="persistence",
            technique="Hijack Execution Flow",
            external_id="T1574",
            attack_pattern="attack-pattern--aedfca76-3b30-4866-b2aa-0f1d7fd1e4b6",
        ),
    )
    selected_events = [select(SCHED_PROCESS_EXEC), *write_selectors(LD_SO_PRELOAD.patterns)]
    parameters = {
        "env_vars": Param(list(PRELOAD_ENV_VARS), "environment variables that make the loader load extra libraries"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._assignments = tuple(name + "=" for name in self.params.env_vars)

    def on_event(self, event: Event) -> None:
        if event.name == SCHED_PROCESS_EXEC:
            env = event.arg("env", None)
            if not isinstance(env, list) or not self._assignments:
                return  # Tracee ignores a missing or unreadable env
            for variable in env:
                if isinstance(variable, str) and variable.startswith(self._assignments):
                    name = variable.partition("=")[0]
                    self.emit(event, {name: variable})
                    return
            return
        path = written_path(event)
        if path is not None and LD_SO_PRELOAD.matches(path):
            self.emit(event)


class KernelModuleLoading(HoldsOlderFindings):
    """TRC-1017: a kernel module loaded."""

    metadata = SignatureMetadata(
        id="TRC-1017",
        version="1",
        name="Kernel module loading detected",
        event_name="kernel_module_loading",
        description=(
            "Loading of a kernel module was detected. Kernel modules are binaries meant to run in the kernel. "
            "Adversaries may try and load kernel modules to extend their capabilities and avoid detection by "
            "running in the kernel and not user space."
        ),
        properties=mitre_properties(
            severity=2,
            category="persistence",
            technique="Kernel Modules and Extensions",
            external_id="T1547.006",
            attack_pattern="attack-pattern--a1b52199-c8c5-438a-9ded-656f1d0888c6",
        ),
    )
    selected_events = [
        select("module_load"),
        # Tracee v0.8-v0.19: the init_module syscall, and the module file read by finit_module
        recorded_only(select("init_module")),
        recorded_only(select("security_kernel_read_file", type="kernel-module")),
    ]

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._loaded = RecentActions()  # module_load reported, until the init_module syscall returns

    def on_event(self, event: Event) -> None:
        held = self._held
        if held:
            held.expire(event.timestamp)
        name = event.name
        if name == "module_load":
            key = process_key(event)
            held.settle(key)  # this load's file read, if it was seen: reported here instead
            self._loaded.add(key, event.timestamp)
            self.emit(event)
        elif name == "init_module":
            # a syscall event comes when the call returns, after the module_load of its load
            if not self._loaded.consume(process_key(event), event.timestamp):
                self.emit(event)
        elif name == "security_kernel_read_file" and event.arg("type", None) == "kernel-module":
            held.hold(process_key(event), event)


class RcdModification(ModificationSignature):
    """TRC-1026: an rc.d boot script written or renamed into place, or ``update-rc.d`` run."""

    metadata = SignatureMetadata(
        id="TRC-1026",
        version="1",
        name="Rcd modification detected",
        event_name="rcd_modification",
        description=(
            "The rcd files were modified. rcd files are scripts executed on boot and runlevel switch. Those "
            "scripts are responsible for service control in runlevel switch. Adversaries may add or modify rcd "
            "files in order to persist a reboot, thus maintaining malicious execution on the affected host."
        ),
        properties=mitre_properties(
            severity=2,
            category="persistence",
            technique="RC Scripts",
            external_id="T1037.004",
            attack_pattern="attack-pattern--dca670cf-eeec-438f-8185-fd959d9ef211",
        ),
    )
    paths = RCD_SCRIPTS
    commands = RCD_COMMANDS


class ScheduledTaskModification(ModificationSignature):
    """TRC-1027: a cron file written or renamed into place, or a scheduling command run."""

    metadata = SignatureMetadata(
        id="TRC-1027",
        version="1",
        name="Scheduled tasks modification detected",
        event_name="scheduled_task_mod",
        description=(
            "The task scheduling functionality or files were modified. Crontab schedules task execution or "
            "enables task execution at boot time. Adversaries may add or modify scheduled tasks in order to "
            "persist a reboot, thus maintaining malicious execution on the affected host."
        ),
        properties=mitre_properties(
            severity=2,
            category="persistence",
            technique="Cron",
            external_id="T1053.003",
            attack_pattern="attack-pattern--2acf44aa-542f-4366-b4eb-55ef5747759c",
        ),
    )
    paths = CRON_FILES
    commands = CRON_COMMANDS
