"""A NATS connection for synchronous code: nats-py's asyncio client on a background thread.

The engine is synchronous; nats-py is asyncio. A :class:`BusConnection` runs one
event loop on a daemon thread, connects there (reconnecting for as long as
``--nats-reconnect-wait`` times the attempts allow), and lets the main thread run
coroutines on it (:meth:`BusConnection.call`) with a deadline.

Credentials and TLS (:class:`~.credentials.BusCredentials`, from the ``--nats-*``
options; :mod:`.credentials` defines them and :class:`BusError`, re-exported here) are
passed to ``nats.connect`` as nats-py takes them: user and password, a token, an
NKey seed file, a ``.creds`` file (JWT and seed), a CA file, a client certificate
and key. Secrets come from files or the environment (``NATS_PASSWORD``,
``NATS_TOKEN``), never from the command line, and are never logged: every message
about a connection names the server without credentials, and nats-py's own log
lines and errors pass through :func:`BusCredentials.redact`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .address import BusAddress
from .credentials import BusCredentials, BusError, add_bus_options

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["BusConnection", "BusCredentials", "BusError", "add_bus_options"]

log = logging.getLogger("pytracee.bus")
T = TypeVar("T")

#: Seconds a first connection may take before the command gives up.
CONNECT_TIMEOUT: Final = 5.0


class _RedactingFilter(logging.Filter):
    """Blanks the secrets out of nats-py's own log records."""

    def __init__(self, connection: BusConnection) -> None:
        super().__init__()
        self.connection = connection

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio" and "eof_received()" in str(record.msg):
            return False  # asyncio's note when nats-py closes a TLS connection: not a problem
        record.msg = self.connection.redact(record.getMessage())
        record.args = None
        return True


class BusConnection:
    """One NATS connection, owned by a background event-loop thread.

    :param address: the servers (their credentials, if any, in the URLs).
    :param credentials: credentials, TLS and reconnection settings.
    :param name: the connection's name in the server's monitoring.
    """

    def __init__(self, address: BusAddress, credentials: BusCredentials, name: str = "pytracee") -> None:
        self.address = address
        self.credentials = credentials
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pytracee-nats", daemon=True)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.disconnects = 0
        self._closing = False
        self._filter = _RedactingFilter(self)

    def redact(self, text: str) -> str:
        """``text`` without any secret of this connection."""
        return self.credentials.redact(text, self.address)

    # --- lifecycle ---

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect (from the main thread); :class:`BusError` if no server answers in ``timeout``."""
        for name in ("nats", "asyncio"):
            logging.getLogger(name).addFilter(self._filter)
        self._thread.start()
        self.call(self._connect(timeout), timeout + 2)

    async def _connect(self, timeout: float) -> None:
        import nats

        creds = self.credentials
        tls = creds.tls_context(self.address.tls_required)
        options: dict[str, Any] = {
            "servers": list(self.address.servers),
            "name": self.name,
            "connect_timeout": max(1, round(timeout)),
            "reconnect_time_wait": creds.reconnect_wait,
            "max_reconnect_attempts": creds.reconnect_attempts,
            "allow_reconnect": True,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnect,
            "reconnected_cb": self._on_reconnect,
        }
        if tls is not None:
            options["tls"] = tls
            if creds.tls_hostname:
                options["tls_hostname"] = creds.tls_hostname
        if creds.user:
            options["user"] = creds.user
            options["password"] = creds.password or ""
        if creds.token:
            options["token"] = creds.token
        if creds.nkey_seed_file:
            options["nkeys_seed"] = creds.nkey_seed_file
        if creds.creds_file:
            options["user_credentials"] = creds.creds_file
        try:
            self._nc = await asyncio.wait_for(nats.connect(**options), timeout)
        except Exception as exc:  # noqa: BLE001 - nats-py raises many kinds; each means no connection
            raise BusError(f"{self.address.display}: cannot connect: {self.redact(_describe(exc))}") from None
        self._js = self._nc.jetstream()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("%s: %s", self.address.display, self.redact(_describe(exc)))

    async def _on_disconnect(self) -> None:
        if self._closing:
            return
        self.disconnects += 1
        log.warning("%s: disconnected; reconnecting", self.address.display)

    async def _on_reconnect(self) -> None:
        log.info("%s: reconnected", self.address.display)

    def close(self, timeout: float = 5.0) -> None:
        """Flush and close the connection, then stop the thread; idempotent."""
        self._closing = True
        if self._thread.is_alive():
            if self._nc is not None:
                try:
                    self.call(self._close(), timeout)
                except BusError as exc:
                    log.warning("%s", exc)
            try:
                self.call(self._cancel_tasks(), timeout)
            except BusError:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()
        for name in ("nats", "asyncio"):
            logging.getLogger(name).removeFilter(self._filter)

    async def _cancel_tasks(self) -> None:
        """Cancel what still runs on the loop (nats-py's readers, a publisher), so that
        stopping it leaves no task pending."""
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close(self) -> None:
        nc = self._nc
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.flush(), 2)
            except Exception:  # noqa: BLE001, S110 - closing anyway
                pass
            await nc.close()

    # --- use ---

    @property
    def nc(self) -> Client:
        """The nats-py client (on the loop thread only)."""
        if self._nc is None:
            raise BusError("not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (on the loop thread only)."""
        if self._js is None:
            raise BusError("not connected")
        return self._js

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the connection's loop and wait for it (main thread).

        :raises BusError: when it raises, or does not finish within ``timeout`` seconds.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise BusError(f"{self.address.display}: no answer within {timeout:g} s") from None
        except BusError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the request, reported as one
            raise BusError(f"{self.address.display}: {self.redact(_describe(exc))}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name
