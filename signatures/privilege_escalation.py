"""Built-in signatures of the MITRE ATT&CK tactic *Privilege Escalation* (``Category: privilege-escalation``).

Ports of Tracee v0.24.1. Most watch container escapes through kernel
interfaces: cgroup v1 ``notify_on_release``/``release_agent`` (TRC-106,
TRC-1010), ``core_pattern`` (TRC-1011), device mounts (TRC-1014), the Docker
socket (TRC-1019), ``/proc/kcore`` (TRC-1021) and SysRq (TRC-1031). The others
detect ASLR inspection (TRC-109) and sudoers changes (TRC-1028).
"""

from __future__ import annotations

from typing import Final

from pytracee.engine import Event, Signature, SignatureMetadata, select

from ._common import (
    FILE_OPEN,
    ModificationSignature,
    PathRule,
    basename_patterns,
    go_base,
    mitre_properties,
    opened_path,
    write_selectors,
    written_path,
)

__all__ = [
    "AslrInspection",
    "CgroupNotifyOnReleaseModification",
    "CgroupReleaseAgentModification",
    "CorePatternModification",
    "DiskMount",
    "DockerAbuse",
    "ProcKcoreRead",
    "SudoersModification",
    "SystemRequestKeyConfigModification",
]

#: cgroup v1 file whose write arms the release agent (TRC-106).
NOTIFY_ON_RELEASE: Final = "notify_on_release"
#: cgroup v1 file naming the program run on release (TRC-1010).
RELEASE_AGENT: Final = "release_agent"
ASLR_CONFIG: Final = PathRule(files=("/proc/sys/kernel/randomize_va_space",))
CORE_PATTERN: Final = PathRule(suffixes=("/proc/sys/kernel/core_pattern",))
#: Device names whose mount exposes a host disk (TRC-1014).
DEVICE_DIR: Final = "/dev/"
DOCKER_SOCKET: Final = PathRule(suffixes=("docker.sock",))
PROC_KCORE: Final = PathRule(suffixes=("/proc/kcore",))
SUDOERS: Final = PathRule(
    files=("/etc/sudoers", "/private/etc/sudoers"),
    prefixes=("/etc/sudoers.d/", "/private/etc/sudoers.d/"),
)
SYSRQ: Final = PathRule(files=("/proc/sys/kernel/sysrq", "/proc/sysrq-trigger"))


class CgroupNotifyOnReleaseModification(Signature):
    """TRC-106: a cgroup ``notify_on_release`` file opened for writing."""

    metadata = SignatureMetadata(
        id="TRC-106",
        version="1",
        name="Cgroups notify_on_release file modification",
        event_name="cgroup_notify_on_release",
        description=(
            "An attempt to modify Cgroup notify_on_release file was detected. Cgroups are a Linux kernel feature "
            "which limits the resource usage of a set of processes. Adversaries may use this feature for "
            "container escaping."
        ),
        properties=mitre_properties(
            severity=3,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname=basename_patterns([NOTIFY_ON_RELEASE]))]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=True)
        if path is not None and go_base(path) == NOTIFY_ON_RELEASE:
            self.emit(event)


class AslrInspection(Signature):
    """TRC-109: the ASLR setting (``randomize_va_space``) read."""

    metadata = SignatureMetadata(
        id="TRC-109",
        version="1",
        name="ASLR inspection detected",
        event_name="aslr_inspection",
        description=(
            "The ASLR (address space layout randomization) configuration was inspected. ASLR is used by Linux to "
            "prevent memory vulnerabilities. An adversary may want to inspect and change the ASLR configuration "
            "in order to avoid detection."
        ),
        properties=mitre_properties(
            severity=0,
            category="privilege-escalation",
            technique="Exploitation for Privilege Escalation",
            external_id="T1068",
            attack_pattern="attack-pattern--b21c3b2d-02e6-45b1-980b-e69051040839",
        ),
    )
    selected_events = [select(FILE_OPEN, pathname=ASLR_CONFIG.patterns)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=False)
        if path is not None and ASLR_CONFIG.matches(path):
            self.emit(event)


class CgroupReleaseAgentModification(Signature):
    """TRC-1010: a cgroup ``release_agent`` file opened for writing or replaced by a rename."""

    metadata = SignatureMetadata(
        id="TRC-1010",
        version="1",
        name="Cgroups release agent file modification",
        event_name="cgroup_release_agent",
        description=(
            "An attempt to modify Cgroup release agent file was detected. Cgroups are a Linux kernel feature "
            "which limits the resource usage of a set of processes. Adversaries may use this feature for "
            "container escaping."
        ),
        properties=mitre_properties(
            severity=3,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = write_selectors(basename_patterns([RELEASE_AGENT]), origin="container")

    def on_event(self, event: Event) -> None:
        path = written_path(event)
        if path is not None and go_base(path) == RELEASE_AGENT:
            self.emit(event)


class CorePatternModification(Signature):
    """TRC-1011: the kernel ``core_pattern`` opened for writing."""

    metadata = SignatureMetadata(
        id="TRC-1011",
        version="1",
        name="Core dumps configuration file modification detected",
        event_name="core_pattern_modification",
        description=(
            "Modification of the core dump configuration file (core_pattern) detected. Core dumps are usually "
            "written to disk when a program crashes. Certain modifications enable container escaping through the "
            "kernel core_pattern feature."
        ),
        properties=mitre_properties(
            severity=3,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname=CORE_PATTERN.patterns)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=True)
        if path is not None and CORE_PATTERN.matches(path):
            self.emit(event)


class DiskMount(Signature):
    """TRC-1014: a running container mounted a device from ``/dev/``."""

    metadata = SignatureMetadata(
        id="TRC-1014",
        version="1",
        name="Container device mount detected",
        event_name="disk_mount",
        description=(
            "Container device filesystem mount detected. A mount of a host device filesystem can be exploited by "
            "adversaries to perform container escape."
        ),
        properties=mitre_properties(
            severity=3,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = [select("security_sb_mount", origin="container", dev_name=DEVICE_DIR + "*")]

    def on_event(self, event: Event) -> None:
        if event.name != "security_sb_mount" or not event.container_started:
            return
        if event.str_arg("dev_name", "").startswith(DEVICE_DIR):
            self.emit(event)


class DockerAbuse(Signature):
    """TRC-1019: the Docker socket opened for writing or connected to from a container."""

    metadata = SignatureMetadata(
        id="TRC-1019",
        version="1",
        name="Docker socket abuse detected",
        event_name="docker_abuse",
        description=(
            "An attempt to abuse the Docker UNIX socket inside a container was detected. docker.sock is the UNIX "
            "socket that Docker uses as the entry point to the Docker API. Adversaries may attempt to abuse this "
            "socket to compromise the system."
        ),
        properties=mitre_properties(
            severity=2,
            category="privilege-escalation",
            technique="Exploitation for Privilege Escalation",
            external_id="T1068",
            attack_pattern="attack-pattern--b21c3b2d-02e6-45b1-980b-e69051040839",
        ),
    )
    selected_events = [
        select(FILE_OPEN, origin="container", pathname=DOCKER_SOCKET.patterns),
        select("security_socket_connect", origin="container"),
    ]

    def on_event(self, event: Event) -> None:
        if event.name == "security_socket_connect":
            addr = event.sockaddr_arg("remote_addr")
            path = addr.path if addr.is_unix else None
        else:
            path = opened_path(event, write=True)
        if path is not None and DOCKER_SOCKET.matches(path):
            self.emit(event)


class ProcKcoreRead(Signature):
    """TRC-1021: ``/proc/kcore`` (the host's physical memory) read."""

    metadata = SignatureMetadata(
        id="TRC-1021",
        version="1",
        name="Kcore memory file read",
        event_name="proc_kcore_read",
        description=(
            "An attempt to read /proc/kcore file was detected. KCore provides a full dump of the physical memory "
            "of the system in the core file format. Adversaries may read this file to get all of the host memory "
            "and use this information for container escape."
        ),
        properties=mitre_properties(
            severity=2,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname=PROC_KCORE.patterns)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=False)
        if path is not None and PROC_KCORE.matches(path):
            self.emit(event)


class SudoersModification(ModificationSignature):
    """TRC-1028: a sudoers file opened for writing or replaced by a rename."""

    metadata = SignatureMetadata(
        id="TRC-1028",
        version="1",
        name="Sudoers file modification detected",
        event_name="sudoers_modification",
        description=(
            "The sudoers file was modified. The sudoers file is a configuration file which controls the "
            "permissions and options of the sudo feature. Adversaries may alter the sudoers file to elevate "
            "privileges, execute commands as other users or spawn processes with higher privileges."
        ),
        properties=mitre_properties(
            severity=2,
            category="privilege-escalation",
            technique="Sudo and Sudo Caching",
            external_id="T1548.003",
            attack_pattern="attack-pattern--1365fe3b-0f50-455d-b4da-266ce31c23b0",
        ),
    )
    paths = SUDOERS


class SystemRequestKeyConfigModification(Signature):
    """TRC-1031: the SysRq configuration or trigger file opened for writing."""

    metadata = SignatureMetadata(
        id="TRC-1031",
        version="1",
        name="System request key configuration modification",
        event_name="system_request_key_mod",
        description=(
            "An attempt to modify and activate the System Request Key configuration file was detected. The system"
            " request key allows immediate input to the kernel through simple key combinations. Adversaries may "
            "use this feature to immediately shut down or restart a system. With read access to kernel logs, host"
            " related information such as listing tasks and CPU registers may be disclosed and could be used for "
            "container escape."
        ),
        properties=mitre_properties(
            severity=3,
            category="privilege-escalation",
            technique="Escape to Host",
            external_id="T1611",
            attack_pattern="attack-pattern--4a5b7ade-8bb5-4853-84ed-23f262002665",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname=SYSRQ.patterns)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=True)
        if path is not None and SYSRQ.matches(path):
            self.emit(event)
