"""Built-in signatures of the MITRE ATT&CK tactic *Discovery*.

Ports of Tracee v0.24.1: reads of the scheduler debug file (TRC-1029,
``Category: discovery``) and connections from a container to the Kubernetes
API server (TRC-1013, an older signature whose metadata still has the era-A
form: ``"MITRE ATT&CK": "Discovery: Cloud Service Discovery"``, no Category).
"""

from __future__ import annotations

from typing import Final

from pytracee.engine import (
    Event,
    Signature,
    SignatureContext,
    SignatureMetadata,
    select,
)

from ._common import (
    FILE_OPEN,
    SCHED_PROCESS_EXEC,
    PathRule,
    mitre_properties,
    opened_path,
)

__all__ = ["K8sApiConnection", "SchedDebugRecon"]

SCHED_DEBUG: Final = PathRule(files=("/proc/sched_debug", "/sys/kernel/debug/sched/debug"))
#: The variable Kubernetes sets in every container to the API server's address.
_API_SERVER_ENV: Final = "KUBERNETES_SERVICE_HOST="


class K8sApiConnection(Signature):
    """TRC-1013: a container connected to the Kubernetes API server it was told about."""

    metadata = SignatureMetadata(
        id="TRC-1013",
        version="0.1.0",
        name="Kubernetes API server connection detected",
        event_name="k8s_api_connection",
        description=(
            "A connection to the kubernetes API server was detected. The K8S API server is the brain of your K8S "
            "cluster, adversaries may try and communicate with the K8S API server to gather "
            "information/credentials, or even run more containers and laterally expand their grip on your "
            "systems."
        ),
        tags=("container",),
        properties={
            "Severity": 1,
            "MITRE ATT&CK": "Discovery: Cloud Service Discovery",
        },
    )
    selected_events = [
        select(SCHED_PROCESS_EXEC, origin="container"),
        select("security_socket_connect", origin="container"),
    ]

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        #: container id -> API server IP taken from an exec's environment
        self.api_server_by_container: dict[str, str] = {}

    def on_event(self, event: Event) -> None:
        container_id = event.container_id
        if not container_id:
            return
        if event.name == SCHED_PROCESS_EXEC:
            env = event.arg("env", None)
            if not isinstance(env, list):
                return  # Tracee ignores a missing or unreadable env
            address: str | None = _api_server_address(env)
            if address:
                self.api_server_by_container[container_id] = address
        elif event.name == "security_socket_connect":
            address = self.api_server_by_container.get(container_id)
            if address is None:
                return
            remote = event.sockaddr_arg("remote_addr")
            if remote.is_internet and remote.ip == address:
                self.emit(event, {"ip": address})

    def close(self) -> None:
        self.api_server_by_container.clear()


def _api_server_address(env: list[str]) -> str:
    # As Tracee: the first entry *containing* the assignment, value after its first "=".
    for variable in env:
        if isinstance(variable, str) and _API_SERVER_ENV in variable:
            return variable.partition("=")[2].strip()
    return ""


class SchedDebugRecon(Signature):
    """TRC-1029: the scheduler debug file (CPU and process details) read."""

    metadata = SignatureMetadata(
        id="TRC-1029",
        version="1",
        name="sched_debug CPU file was read",
        event_name="sched_debug_recon",
        description=(
            "The sched_debug file was read. This file contains information about your CPU and processes. "
            "Adversaries may read this file in order to gather that information for their use."
        ),
        properties=mitre_properties(
            severity=1,
            category="discovery",
            technique="Container and Resource Discovery",
            external_id="T1613",
            attack_pattern="attack-pattern--0470e792-32f8-46b0-a351-652bc35e9336",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname=SCHED_DEBUG.patterns)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=False)
        if path is not None and SCHED_DEBUG.matches(path):
            self.emit(event)
