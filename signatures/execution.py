"""Built-in signatures of remote command execution.

Ports of Tracee v0.24.1: a process whose standard input/output is a network
socket, the base of a reverse shell (TRC-101, ``Category: execution``), and a
web server spawning a shell (TRC-1016, ``Category: initial-access``), also as
Tracee v0.8 to v0.22 recorded it (``security_bprm_check``: see :mod:`._eras`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pytracee.engine import (
    Event,
    EventSelector,
    Signature,
    SignatureContext,
    SignatureMetadata,
    select,
)
from pytracee.engine.params import Param

from ._common import SCHED_PROCESS_EXEC, mitre_properties
from ._eras import HoldsOlderFindings, process_key, recorded_only

__all__ = ["IllegitimateShell", "StdioOverSocket"]

#: The argument holding the descriptor that ends up connected, per event.
_SOCKET_FD_ARGS: Final = {"security_socket_connect": "sockfd", "socket_dup": "newfd"}
#: stdin, stdout, stderr.
STDIO_FDS: Final = frozenset({0, 1, 2})
#: Ports that name no real peer (an unconnected or AF_UNSPEC address).
_UNSPECIFIED_PORTS: Final = frozenset({"", "0"})

SHELL_NAMES: Final = frozenset({"ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"})
#: Process names (comm, at most 15 characters) of web servers.
WEB_SERVER_NAMES: Final = frozenset({"nginx", "httpd", "httpd-foregroun", "http-nio", "lighttpd", "apache", "apache2"})
#: Tracee v0.8-v0.22: the executed path ends with one of these.
BPRM_CHECK: Final = "security_bprm_check"


class StdioOverSocket(Signature):
    """TRC-101: stdin/stdout/stderr connected to an internet socket (reverse shell)."""

    metadata = SignatureMetadata(
        id="TRC-101",
        version="2",
        name="Process standard input/output over socket detected",
        event_name="stdio_over_socket",
        description=(
            "A process has its standard input/output redirected to a socket. This behavior is the base of a "
            "Reverse Shell attack, which is when an interactive shell being invoked from a target machine back to"
            " the attacker's machine, giving it interactive control over the target. Adversaries may use a "
            "Reverse Shell to retain control over a compromised target while bypassing security measures like "
            "network firewalls."
        ),
        properties=mitre_properties(
            severity=3,
            category="execution",
            technique="Unix Shell",
            external_id="T1059.004",
            attack_pattern="attack-pattern--a9d4b653-6915-42af-98b2-5758c4ceee56",
        ),
    )
    selected_events = [select("security_socket_connect"), select("socket_dup")]

    def on_event(self, event: Event) -> None:
        fd_arg = _SOCKET_FD_ARGS.get(event.name)
        if fd_arg is None:
            return
        fd = event.int_arg(fd_arg)
        if fd not in STDIO_FDS:
            return
        addr = event.sockaddr_arg("remote_addr")
        if not addr.is_internet or addr.port in _UNSPECIFIED_PORTS:
            return
        self.emit(event, {"IP address": addr.ip, "Port": addr.port, "File descriptor": fd})


class IllegitimateShell(HoldsOlderFindings):
    """TRC-1016: a shell executed by a web server process."""

    metadata = SignatureMetadata(
        id="TRC-1016",
        version="1",
        name="Web server spawned a shell",
        event_name="illegitimate_shell",
        description=(
            "A web-server program on your server spawned a shell program. Shell is the linux command-line "
            "program, web servers usually don't run shell programs, so this alert might indicate an adversary is "
            "exploiting a web server program to gain command execution on the server."
        ),
        properties=mitre_properties(
            severity=2,
            category="initial-access",
            technique="Exploit Public-Facing Application",
            external_id="T1190",
            attack_pattern="attack-pattern--3f886f2a-874f-4333-b794-aa6075009b1c",
        ),
    )
    parameters = {
        "shells": Param(sorted(SHELL_NAMES), "process names of shells"),
        "web_servers": Param(
            sorted(WEB_SERVER_NAMES), "process names (comm, at most 15 characters) of web servers that run no shell"
        ),
    }

    def get_selected_events(self) -> Sequence[EventSelector]:
        return [
            select(SCHED_PROCESS_EXEC, prev_comm=sorted(self.params.web_servers)),
            # Tracee v0.8-v0.22: the web server (processName) checked for exec of a shell's path
            recorded_only(select(BPRM_CHECK, pathname=["*/" + name for name in sorted(self.params.shells)])),
        ]

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._shells = frozenset(self.params.shells)
        self._web_servers = frozenset(self.params.web_servers)
        self._shell_path_suffixes = tuple(f"/{name}" for name in sorted(self._shells))

    def on_event(self, event: Event) -> None:
        held = self._held
        if held:
            held.expire(event.timestamp)
        if event.name == SCHED_PROCESS_EXEC:
            older = held.settle(process_key(event)) if held else None
            if event.process_name in self._shells and event.str_arg("prev_comm") in self._web_servers:
                self.emit(event)
            elif older is not None:  # the exec the older event saw, under another name (fexecve): still a shell
                self.emit(*older)
        elif (
            event.name == BPRM_CHECK
            and event.process_name in self._web_servers
            and event.str_arg("pathname").endswith(self._shell_path_suffixes)
        ):
            # reported unless this exec's sched_process_exec follows (a stream of both eras)
            held.hold(process_key(event), event)
