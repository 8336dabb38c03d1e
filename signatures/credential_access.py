"""Built-in signatures of the MITRE ATT&CK tactic *Credential Access* (``Category: credential-access``).

Ports of Tracee v0.24.1: reads of Kubernetes service account tokens
(TRC-108, disabled by default as in Tracee), theft of Kubernetes TLS
certificates (TRC-1018) and reads of other processes' memory (TRC-1023).
"""

from __future__ import annotations

import re
from typing import Final

from pytracee.engine import Event, Signature, SignatureContext, SignatureMetadata, select
from pytracee.engine.params import Param

from ._common import (
    FILE_OPEN,
    INODE_RENAME,
    PROC_MEM_PATTERNS,
    PROC_MEM_RE,
    PathRule,
    mitre_properties,
    opened_path,
)

__all__ = ["K8sCertificateTheft", "K8sServiceAccountToken", "ProcMemAccess"]

# Tracee v0.24.1's `secrets/kubernetes.io/serviceaccount.+token$`, verbatim: the
# unescaped "." matches any character (the HEAD detector later escaped it).
_TOKEN_SUFFIX: Final = "token"  # noqa: S105 - a file name, not a password
_TOKEN_PATH_RE: Final = re.compile(r"secrets/kubernetes.io/serviceaccount.+" + _TOKEN_SUFFIX + r"\Z")
#: Processes allowed to read service account tokens (TRC-108).
TOKEN_READERS: Final = frozenset(
    {"flanneld", "kube-proxy", "etcd", "kube-apiserver", "coredns", "kube-controller", "kubectl"}
)

K8S_PKI_DIR: Final = PathRule(prefixes=("/etc/kubernetes/pki/",))
#: Processes allowed to read the Kubernetes PKI (TRC-1018).
K8S_PKI_READERS: Final = frozenset({"kube-apiserver", "kubelet", "kube-controller", "etcd"})


class K8sServiceAccountToken(Signature):
    """TRC-108: a Kubernetes service account token read by an unexpected process."""

    # Shipped in v0.9.0, left out of v0.24.1's exported set (too noisy, tracee#2296).
    enabled_by_default = False
    metadata = SignatureMetadata(
        id="TRC-108",
        version="1",
        name="K8s service account token file read",
        event_name="k8s_service_account_token",
        description=(
            "The Kubernetes service account token file was read on your container. This token is used to "
            "communicate with the Kubernetes API Server. Adversaries may try to communicate with the API Server "
            "to steal information and/or credentials, or even run more containers and laterally extend their grip"
            " on the systems."
        ),
        properties=mitre_properties(
            severity=0,
            category="credential-access",
            technique="Exploitation for Credential Access",
            external_id="T1212",
            attack_pattern="attack-pattern--9c306d8d-cde7-4b4c-b6e8-d0bb16caca36",
            kubernetes_technique="Container service account",
        ),
    )
    selected_events = [select(FILE_OPEN, origin="container", pathname="*" + _TOKEN_SUFFIX)]
    parameters = {
        "allowed_processes": Param(sorted(TOKEN_READERS), "process names allowed to read service account tokens"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._allowed = frozenset(self.params.allowed_processes)

    def on_event(self, event: Event) -> None:
        if event.name != FILE_OPEN or event.process_name in self._allowed:
            return
        path = opened_path(event, write=False)
        if path is not None and _TOKEN_PATH_RE.search(path):
            self.emit(event)


class K8sCertificateTheft(Signature):
    """TRC-1018: the Kubernetes PKI read by an unexpected process, or renamed away."""

    metadata = SignatureMetadata(
        id="TRC-1018",
        version="1",
        name="K8s TLS certificate theft detected",
        event_name="k8s_cert_theft",
        description=(
            "Theft of Kubernetes TLS certificates was detected. TLS certificates are used to establish trust "
            "between systems. The Kubernetes certificate is used to to enable secure communication between "
            "Kubernetes components, such as kubelet scheduler controller and API Server. An adversary may steal a"
            " Kubernetes certificate on a compromised system to impersonate Kubernetes components within the "
            "cluster."
        ),
        properties=mitre_properties(
            severity=3,
            category="credential-access",
            technique="Steal Application Access Token",
            external_id="T1528",
            attack_pattern="attack-pattern--890c9858-598c-401d-a4d5-c67ebcdd703a",
        ),
    )
    selected_events = [
        select(FILE_OPEN, pathname=K8S_PKI_DIR.patterns),
        select(INODE_RENAME, old_path=K8S_PKI_DIR.patterns),
    ]
    parameters = {
        "allowed_processes": Param(sorted(K8S_PKI_READERS), "process names allowed to read the Kubernetes PKI"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._allowed = frozenset(self.params.allowed_processes)

    def on_event(self, event: Event) -> None:
        if event.name == INODE_RENAME:
            path: str | None = event.str_arg("old_path")
        elif event.name == FILE_OPEN and event.process_name not in self._allowed:
            path = opened_path(event, write=False)
        else:
            return
        if path is not None and K8S_PKI_DIR.matches(path):
            self.emit(event)


class ProcMemAccess(Signature):
    """TRC-1023: ``/proc/<pid>/mem`` opened for reading."""

    metadata = SignatureMetadata(
        id="TRC-1023",
        version="1",
        name="Process memory access detected",
        event_name="proc_mem_access",
        description=(
            "Process memory access detected. Adversaries may access other processes memory to steal credentials "
            "and secrets."
        ),
        properties=mitre_properties(
            severity=3,
            category="credential-access",
            technique="Proc Filesystem",
            external_id="T1003.007",
            attack_pattern="attack-pattern--3120b9fa-23b8-4500-ae73-09494f607b7d",
        ),
    )
    selected_events = [select(FILE_OPEN, pathname=PROC_MEM_PATTERNS)]

    def on_event(self, event: Event) -> None:
        path = opened_path(event, write=False)
        if path is not None and PROC_MEM_RE.search(path):
            self.emit(event)
