"""EX-1: the shadow password files read by a process not running as root.

Only root (and a few setuid helpers that verify passwords) has any business
reading ``/etc/shadow``: on a healthy system a non-root user cannot open it at
all, so an open that the kernel let through for a non-root user (a
misconfigured permission, a capability such as ``CAP_DAC_READ_SEARCH``, a
container running with host mounts) is worth a look. Tracee's ``userId`` is the
task's real user ID, so setuid-root helpers started by a user show that user's
ID: they are allowed by name.
"""

from __future__ import annotations

from typing import Final

from pytracee.engine import Event, Signature, SignatureMetadata, select

__all__ = ["PASSWORD_HELPERS", "SHADOW_FILES", "ShadowFileRead"]

SHADOW_FILES: Final = ("/etc/shadow", "/etc/gshadow")
#: Setuid-root programs that read the shadow files on a user's behalf.
PASSWORD_HELPERS: Final = frozenset(
    {"unix_chkpwd", "passwd", "chage", "chfn", "chsh", "gpasswd", "newgrp", "su", "sudo", "login", "sshd"}
)


class ShadowFileRead(Signature):
    """EX-1: ``/etc/shadow`` or ``/etc/gshadow`` opened for reading by a non-root user."""

    metadata = SignatureMetadata(
        id="EX-1",
        version="1",
        name="Shadow password file read by a non-root process",
        event_name="shadow_file_read",
        description=(
            "A process running as a non-root user opened the shadow password file for reading. Adversaries read "
            "/etc/shadow to crack password hashes offline; a non-root user able to read it points to a "
            "permission or capability misconfiguration."
        ),
        tags=("linux", "credentials"),
        properties={
            "Severity": 3,
            "Category": "credential-access",
            "Technique": "/etc/passwd and /etc/shadow",
            "Kubernetes_Technique": "",
            "id": "attack-pattern--d0b4fcdb-d67d-4ed2-99ce-788b12f8c0f4",
            "external_id": "T1003.008",
        },
    )
    # The data filter keeps every other open away from on_event: the engine
    # compares the pathname before calling the signature.
    selected_events = [select("security_file_open", pathname=list(SHADOW_FILES))]

    def on_event(self, event: Event) -> None:
        if event.user_id == 0 or event.process_name in PASSWORD_HELPERS:
            return
        if event.is_file_read():  # raw flags (32768) or parse-arguments ("O_RDONLY|O_LARGEFILE")
            self.emit(event, {"path": event.str_arg("pathname"), "uid": event.user_id})
