"""``nats://`` addresses: where to publish or consume, checked before anything connects.

Publishing (``tracee --output``, ``--findings-output``, ``tracee-rules --output``)::

    nats://HOST:PORT/SUBJECT[?host=NAME&buffer=N&stream=NAME&partitions=N]

Events and findings go to ``SUBJECT.<host>``: ``host`` is this machine's name, or the
``host=`` given, made into one subject token (see :func:`subject_token`).

Consuming (``tracee-rules --input``)::

    nats://HOST:PORT/STREAM?consumer=NAME[&subject=PREFIX&partitions=N&batch=N&ack_wait=S&idle=S...]

``tls://`` instead of ``nats://`` requires TLS. Several servers of one cluster are
given comma-separated (``nats://a:4222,b:4222/...``). ``user:password@`` in the URL is
accepted but never shown: :attr:`BusAddress.display` leaves it out, and every message
uses it (prefer ``--nats-password-file``: a URL is visible in the process list).
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "BusAddress",
    "check_name",
    "check_subject",
    "is_bus_url",
    "subject_token",
]

SCHEMES: Final = ("nats", "tls")
#: A subject token: what NATS allows, less the characters that confuse tools and shells.
_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-]+")
#: A stream, consumer or bucket name (JetStream forbids ``.``, ``*``, ``>``, space, path separators).
_NAME: Final = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_MAX_SUBJECT: Final = 200


def is_bus_url(text: object) -> bool:
    """Whether an option's value is a ``nats://`` (or ``tls://``) address."""
    return isinstance(text, str) and text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def check_subject(subject: str, what: str = "subject") -> str:
    """``subject`` if it is a literal NATS subject (tokens of letters, digits, ``_``, ``-``
    separated by dots, no wildcards), else :class:`ValueError` saying why."""
    if not subject:
        raise ValueError(f"the {what} is empty")
    if len(subject) > _MAX_SUBJECT:
        raise ValueError(f"the {what} is longer than {_MAX_SUBJECT} characters")
    for token in subject.split("."):
        if not _TOKEN.fullmatch(token):
            shown = token.encode("unicode_escape").decode("ascii")
            raise ValueError(
                f"the {what} {subject.encode('unicode_escape').decode('ascii')!r} has an invalid token {shown!r}: "
                "tokens are letters, digits, '_' and '-', separated by single dots (no wildcards)"
            )
    return subject


def check_name(name: str, what: str) -> str:
    """``name`` if it can name a stream, a consumer or a bucket, else :class:`ValueError`."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"the {what} {name!r} must be 1 to 64 letters, digits, '_' or '-'")
    return name


def subject_token(text: str, fallback: str = "unknown") -> str:
    """``text`` as one subject token: characters other than letters, digits, ``_`` and ``-``
    become ``_``, at most 64 of them (host names come from the traced machine: a container
    chooses its own, so it must never add tokens or wildcards)."""
    token = re.sub(r"[^A-Za-z0-9_\-]", "_", text)[:64]
    return token if token.strip("_") else fallback


def _number(query: dict[str, str], key: str, default: float, low: float, high: float) -> float:
    text = query.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key}={text!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{key}={text} must be from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class BusAddress:
    """A checked ``nats://`` address."""

    #: Server URLs for nats-py (may hold ``user:password@``: never log them).
    servers: tuple[str, ...]
    #: The path: a subject prefix (publishing) or a stream name (consuming).
    path: str
    query: dict[str, str] = field(default_factory=dict)
    #: The address for messages, without credentials.
    display: str = ""
    tls_required: bool = False

    @classmethod
    def parse(cls, url: str, option: str) -> BusAddress:
        """Split ``url``; :class:`ValueError` names ``option`` and what is wrong (never the password)."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in SCHEMES:
            raise ValueError(f"{option}: expected nats://HOST:PORT/... or tls://HOST:PORT/...")
        netloc, _, path_query = rest.partition("/")
        path, _, query_text = path_query.partition("?")
        servers: list[str] = []
        shown: list[str] = []
        for server in netloc.split(","):
            parts = urllib.parse.urlsplit(f"nats://{server}")
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{option}: the port of a server is not a number from 1 to 65535") from None
            host = parts.hostname
            if not host:
                raise ValueError(f"{option}: a server has no host")
            hostport = parts.netloc.rpartition("@")[2]
            servers.append(f"{scheme.lower()}://{server if port else server + ':4222'}")
            shown.append(hostport if port else f"{hostport}:4222")
        try:
            pairs = urllib.parse.parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
        except ValueError:
            raise ValueError(f"{option}: its query is malformed (expected key=value&key=value)") from None
        query: dict[str, str] = {}
        for key, value in pairs:
            if key in query:
                raise ValueError(f"{option}: {key}= is given twice")
            query[key] = value
        path = urllib.parse.unquote(path)
        display = f"{scheme.lower()}://{','.join(shown)}/{path}"
        return cls(tuple(servers), path, query, display, scheme.lower() == "tls")

    def check_keys(self, allowed: tuple[str, ...], option: str) -> None:
        """:class:`ValueError` for a query key not in ``allowed``."""
        unknown = sorted(set(self.query) - set(allowed))
        if unknown:
            raise ValueError(f"{option} {self.display}: unknown {', '.join(unknown)} (known: {', '.join(allowed)})")

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """The query's ``key`` as a number in ``[low, high]``, or ``default``."""
        try:
            return _number(self.query, key, default, low, high)
        except ValueError as exc:
            raise ValueError(f"{self.display}: {exc}") from None

    def host_token(self) -> str:
        """This machine's subject token: ``host=`` or the host name."""
        return subject_token(self.query.get("host") or socket.gethostname())
