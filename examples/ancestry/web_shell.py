"""ANC-1: a shell whose grandparent is a web server.

A web shell or a command injection makes the server (or its CGI/PHP worker) run a
shell: the shell's parent is the worker, its grandparent the server. The process
tree makes that a few lines::

    tracee-rules --rules-dir examples/ancestry --input examples/ancestry/events.jsonl

Findings carry the ancestry under ``processAncestry`` (parent first) in every output template.
"""

from __future__ import annotations

from typing import Final

from pytracee.engine import Event, select, signature

SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh"})
WEB_SERVERS: Final = frozenset({"nginx", "httpd", "apache2", "lighttpd", "caddy"})


@signature(
    id="ANC-1",
    name="Shell whose grandparent is a web server",
    severity=3,
    events=[select("sched_process_exec")],
)
def web_shell(event: Event) -> dict[str, object] | None:
    """A shell executed two generations below a web server."""
    grandparent = event.process.ancestor(2)
    if event.process.comm in SHELLS and grandparent is not None and grandparent.comm in WEB_SERVERS:
        return {"shell": event.process.executable, "argv": list(event.process.argv), "web_server": grandparent.pid}
    return None
