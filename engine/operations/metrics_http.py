"""The HTTP side of ``--metrics-addr``: the request handler and the threading server.

Apart from :mod:`.metrics` so that ``http.server`` is imported only when
:class:`~.metrics.MetricsServer` is made (``--metrics-addr`` given), not at start-up.
"""

from __future__ import annotations

import http.server
import socket
from typing import TYPE_CHECKING, Any

from .metrics import IDLE_TIMEOUT

if TYPE_CHECKING:
    from .metrics import MetricsServer

__all__ = ["MetricsHTTPServer", "MetricsHandler"]


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    """Answers ``GET``/``HEAD`` of ``/metrics`` and ``/healthz`` for the server's owner."""

    server: MetricsHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "pytracee"
    timeout = IDLE_TIMEOUT  # an idle or slow client's connection is closed: it holds no thread for ever

    def do_GET(self) -> None:  # the http.server name
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # the http.server name
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        owner = self.server.owner
        if path == "/metrics":
            from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

            if owner.registry is None:
                status, content_type, body = 503, "text/plain; charset=utf-8", b"not running yet\n"
            else:
                status, content_type, body = 200, CONTENT_TYPE_LATEST, generate_latest(owner.registry)
        elif path == "/healthz":
            healthy, why = owner.health.status() if owner.health is not None else (False, "not running yet")
            status, content_type = (200 if healthy else 503), "text/plain; charset=utf-8"
            body = ("OK\n" if healthy else f"NOT OK: {why}\n").encode()
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (a scrape every few seconds would flood stderr)."""


class MetricsHTTPServer(http.server.ThreadingHTTPServer):
    """A thread per connection (daemon threads), IPv4 or IPv6 by the host's form."""

    daemon_threads = True
    owner: MetricsServer

    def __init__(self, address: tuple[str, int], owner: MetricsServer) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, MetricsHandler)
