"""HTTP over a unix socket: the transport of :class:`~.runtimes.DockerClient`.

Apart from :mod:`.runtimes` so that ``http.client`` (and the ``ssl`` it loads) is
imported only when a Docker or Podman daemon is asked about a container, not when a
command starts.
"""

from __future__ import annotations

import http.client
import socket

__all__ = ["UnixHTTPConnection"]


class UnixHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` to the daemon listening on the unix socket ``path``."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
