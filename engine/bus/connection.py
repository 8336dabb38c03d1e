"""A NATS connection for synchronous code: nats-py's asyncio client on a background thread.

The engine is synchronous; nats-py is asyncio. A :class:`BusConnection` runs one
event loop on a daemon thread, connects there (reconnecting for as long as
``--nats-reconnect-wait`` times the attempts allow), and lets the main thread run
coroutines on it (:meth:`BusConnection.call`) with a deadline.

Credentials and TLS (:class:`BusCredentials`, from the ``--nats-*`` options) are
passed to ``nats.connect`` as nats-py takes them: user and password, a token, an
NKey seed file, a ``.creds`` file (JWT and seed), a CA file, a client certificate
and key. Secrets come from files or the environment (``NATS_PASSWORD``,
``NATS_TOKEN``), never from the command line, and are never logged: every message
about a connection names the server without credentials, and nats-py's own log
lines and errors pass through :func:`BusCredentials.redact`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..errors import ConfigError
from .address import BusAddress

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["BusConnection", "BusCredentials", "BusError", "add_bus_options"]

log = logging.getLogger("pytracee.bus")
T = TypeVar("T")

#: Seconds a first connection may take before the command gives up.
CONNECT_TIMEOUT: Final = 5.0


class BusError(Exception):
    """The bus could not do what was asked (no server, no stream, a refused request)."""


def add_bus_options(parser: argparse.ArgumentParser) -> None:
    """The ``--nats-*`` options: credentials and TLS for every ``nats://`` address."""
    group = parser.add_argument_group("NATS (nats:// inputs and outputs)")
    group.add_argument(
        "--nats-user",
        metavar="NAME",
        help="user name; the password comes from --nats-password-file or the NATS_PASSWORD environment variable",
    )
    group.add_argument("--nats-password-file", metavar="FILE", type=Path, help="file holding the password")
    group.add_argument(
        "--nats-token-file",
        metavar="FILE",
        type=Path,
        help="file holding an authentication token (or the NATS_TOKEN environment variable)",
    )
    group.add_argument("--nats-nkey", metavar="SEEDFILE", type=Path, help="NKey seed file to sign the server's nonce")
    group.add_argument("--nats-creds", metavar="FILE", type=Path, help="credentials file: user JWT and NKey seed")
    group.add_argument("--nats-tls-ca", metavar="FILE", type=Path, help="CA certificates to verify the server with")
    group.add_argument("--nats-tls-cert", metavar="FILE", type=Path, help="client certificate (TLS authentication)")
    group.add_argument("--nats-tls-key", metavar="FILE", type=Path, help="the client certificate's private key")
    group.add_argument("--nats-tls-hostname", metavar="NAME", help="the name the server's certificate must carry")
    group.add_argument(
        "--nats-reconnect-wait",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="seconds between reconnection attempts (default: %(default)s)",
    )
    group.add_argument(
        "--nats-reconnect-attempts",
        metavar="N",
        type=int,
        default=-1,
        help="reconnection attempts before giving up, -1: forever (default: %(default)s)",
    )


def _read_secret(path: Path, option: str) -> str:
    try:
        text = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option} {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if not text:
        raise ConfigError(f"{option} {path}: the file is empty")
    return text


@dataclass(frozen=True)
class BusCredentials:
    """What ``nats.connect`` needs beyond the address: credentials, TLS, reconnection."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey_seed_file: str | None = None
    creds_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_hostname: str | None = None
    reconnect_wait: float = 1.0
    reconnect_attempts: int = -1

    def __repr__(self) -> str:  # never show a secret, even in a traceback's locals
        return f"BusCredentials(user={self.user!r}, password={'***' if self.password else None}, ...)"

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> BusCredentials:
        """From the parsed ``--nats-*`` options (absent ones mean none)."""
        get = options.__dict__.get
        password = os.environ.get("NATS_PASSWORD") or None
        password_file: Path | None = get("nats_password_file")
        if password_file:
            password = _read_secret(password_file, "--nats-password-file")
        token = os.environ.get("NATS_TOKEN") or None
        token_file: Path | None = get("nats_token_file")
        if token_file:
            token = _read_secret(token_file, "--nats-token-file")
        user = get("nats_user")
        if password and not user:
            raise ConfigError("a NATS password was given without --nats-user")
        for option in ("nats_nkey", "nats_creds", "nats_tls_ca", "nats_tls_cert", "nats_tls_key"):
            path = get(option)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"--{option.replace('_', '-')} {path}: no such file")
        if bool(get("nats_tls_cert")) != bool(get("nats_tls_key")):
            raise ConfigError("--nats-tls-cert and --nats-tls-key go together")
        wait = float(get("nats_reconnect_wait") or 1.0)
        attempts: int | None = get("nats_reconnect_attempts")
        if not 0 < wait <= 3600:
            raise ConfigError("--nats-reconnect-wait must be more than 0 and at most 3600 seconds")
        return cls(
            user=user,
            password=password,
            token=token,
            nkey_seed_file=str(get("nats_nkey")) if get("nats_nkey") else None,
            creds_file=str(get("nats_creds")) if get("nats_creds") else None,
            tls_ca=str(get("nats_tls_ca")) if get("nats_tls_ca") else None,
            tls_cert=str(get("nats_tls_cert")) if get("nats_tls_cert") else None,
            tls_key=str(get("nats_tls_key")) if get("nats_tls_key") else None,
            tls_hostname=get("nats_tls_hostname"),
            reconnect_wait=wait,
            reconnect_attempts=attempts if attempts is not None else -1,
        )

    def secrets(self) -> list[str]:
        """The secret values, to be blanked out of any text shown."""
        return [s for s in (self.password, self.token) if s]

    def tls_context(self, required: bool) -> ssl.SSLContext | None:
        """The client TLS context, or None when TLS is neither required nor configured."""
        if not (required or self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            try:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"--nats-tls-cert {self.tls_cert}: {exc}") from None
        return context

    def redact(self, text: str, address: BusAddress | None = None) -> str:
        """``text`` without the secrets (nor the URL's ``user:password@``)."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        if address is not None:
            for server in address.servers:
                userinfo = server.partition("://")[2].rpartition("@")[0]
                if userinfo:
                    text = text.replace(userinfo, "***")
        return text


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
