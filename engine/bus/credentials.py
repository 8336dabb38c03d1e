"""Credentials and TLS for ``nats://`` addresses: the ``--nats-*`` options and :class:`BusError`.

What a command line needs before any connection is made, kept apart from
:mod:`.connection` so that parsing options does not import asyncio (nor ssl, loaded
only when a TLS context is made): the ``--nats-*`` options (:func:`add_bus_options`),
:class:`BusCredentials` read from them, and :class:`BusError`.

Secrets come from files or the environment (``NATS_PASSWORD``, ``NATS_TOKEN``),
never from the command line, and are never shown: :meth:`BusCredentials.redact`
blanks them (and a URL's ``user:password@``) out of any text.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import ssl

    from .address import BusAddress

__all__ = ["BusCredentials", "BusError", "add_bus_options"]


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
        import ssl

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
