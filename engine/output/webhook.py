"""Posting findings to a webhook, without letting a slow or hostile server hold up detection.

:class:`WebhookSender` renders each finding (``--webhook-template``, ``rawjson`` by
default) and POSTs it to ``--webhook URL``, one request per finding as Tracee does.
Delivery happens on one daemon thread, fed by a bounded queue:

* **queue** (``--webhook-queue``, 1000 findings, and at most 64 MiB of bodies): when
  it is full, the new finding is dropped and counted (as Falco's outputs queue does),
  with a warning at most every 10 s; detection never waits for the server;
* **deadline** (``--webhook-timeout``, 10 s): the whole request, connecting, sending
  and reading the answer, gets this long in total, however slowly the server drips;
* **answer**: only the status line and headers are read, at most 64 KiB, then the
  connection is closed (an endless body costs nothing). A 2xx status is a delivery;
  anything else, redirects included, is a failure;
* **end** (``--webhook-drain-timeout``, 5 s): at session finish the queue gets this
  long to empty; what is left is counted as dropped. The thread never keeps the
  process alive, and an interrupt (Ctrl-C) while waiting ends the wait.

Findings that fail or are dropped count as not delivered (exit status 1); the last
line logged is ``webhook URL: N delivered, M failed, K dropped``. Only ``http`` and
``https`` URLs are accepted (``user:password@`` becomes Basic authentication);
proxies from the environment are not used.
"""

from __future__ import annotations

import base64
import logging
import math
import queue
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from ..errors import ConfigError
from ..findings import Finding
from ..hookspecs import hookimpl
from .sink import Sink, Throttle
from .templates import FindingTemplate, TemplateDisabledError, TemplateError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_QUEUED_BYTES",
    "MAX_RESPONSE",
    "DeliveryError",
    "WebhookSender",
    "WebhookURL",
    "post",
]

log = logging.getLogger("pytracee.output")

#: Seconds one request may take in total (``--webhook-timeout``).
DEFAULT_TIMEOUT: Final = 10.0
#: Findings waiting for delivery at most (``--webhook-queue``).
DEFAULT_QUEUE_SIZE: Final = 1000
#: Seconds the queue gets to empty at the end of the run (``--webhook-drain-timeout``).
DEFAULT_DRAIN_TIMEOUT: Final = 5.0
#: Bytes of queued request bodies at most; beyond, findings are dropped as with a full queue.
MAX_QUEUED_BYTES: Final = 64 << 20
#: Bytes of the server's answer read at most (status line and headers; the body is not read).
MAX_RESPONSE: Final = 64 << 10

_HEADERS_END: Final = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE: Final = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?: ([^\r\n]*))?")
_URL_CHARS: Final = re.compile(r"[!-~]+")  # printable ASCII, no space
_HEADER_VALUE: Final = re.compile(r"[ -~]*")  # printable ASCII and space


class DeliveryError(Exception):
    """A request that did not deliver its finding; the message says why."""


@dataclass(frozen=True)
class WebhookURL:
    """A checked ``http``/``https`` URL, split for sending."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str
    authorization: str | None
    #: The URL for messages, without ``user:password@``.
    display: str

    @classmethod
    def parse(cls, url: str) -> WebhookURL:
        """Check and split ``url``; :class:`ValueError` says what is wrong with it."""
        if not _URL_CHARS.fullmatch(url):
            raise ValueError("it must be printable ASCII without spaces (percent-encode other characters)")
        try:
            parts = urllib.parse.urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:  # "Port out of range", "Invalid IPv6 URL"
            problem = (
                "its port is not a number from 1 to 65535" if "port" in str(exc).lower() else f"it is malformed: {exc}"
            )
            raise ValueError(problem) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(
                f"only http:// and https:// URLs can be posted to, not {scheme + ':' if scheme else 'a relative URL'}"
            )
        if port == 0:
            raise ValueError("its port is not a number from 1 to 65535")
        if port is None:
            port = 443 if scheme == "https" else 80
        if not host:
            raise ValueError("it has no host")
        authorization = None
        if parts.username is not None:
            credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        host_header = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        display = urllib.parse.urlunsplit((parts.scheme, host_header, parts.path, parts.query, ""))
        return cls(scheme, host, port, host_header, target, authorization, display)


# --- one request ---------------------------------------------------------------------------------


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeliveryError(f"no complete answer within {timeout:g} s")
    return left


def _connect(url: WebhookURL, deadline: float, timeout: float, tls: ssl.SSLContext | None) -> socket.socket:
    try:
        addresses = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryError(f"unreachable: cannot resolve {url.host}: {exc.strerror}") from None
    error: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline, timeout))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        if tls is None:
            return sock
        try:
            sock.settimeout(_remaining(deadline, timeout))
            return tls.wrap_socket(sock, server_hostname=url.host)  # the handshake, within the deadline
        except BaseException:
            sock.close()
            raise
    if isinstance(error, TimeoutError):
        raise DeliveryError(f"unreachable: no connection within {timeout:g} s")
    raise DeliveryError(f"unreachable: {error.strerror if error and error.strerror else error}")


def _read_status(sock: socket.socket, deadline: float, timeout: float) -> tuple[int, str]:
    """The final status of the answer (1xx answers skipped), reading at most :data:`MAX_RESPONSE` bytes."""
    buffer = bytearray()
    total = 0
    while True:
        end = _HEADERS_END.search(buffer)
        if end is None:
            if total >= MAX_RESPONSE:
                raise DeliveryError(f"the answer's headers are over {MAX_RESPONSE} bytes")
            sock.settimeout(_remaining(deadline, timeout))
            chunk = sock.recv(MAX_RESPONSE - total)
            if not chunk:
                raise DeliveryError("the connection was closed before a complete answer" if buffer else "no answer")
            total += len(chunk)
            buffer += chunk
            continue
        match = _STATUS_LINE.match(buffer)
        if match is None:
            raise DeliveryError(f"not an HTTP answer: {bytes(buffer[:40])!r}")
        status = int(match.group(1))
        reason = (match.group(2) or b"").decode("latin-1")
        if not 100 <= status < 200:
            return status, reason
        del buffer[: end.end()]  # an interim answer (100 Continue, 103 Early Hints): the final one follows


def post(url: WebhookURL, body: bytes, content_type: str, timeout: float, tls: ssl.SSLContext | None = None) -> None:
    """POST ``body`` to ``url``, all within ``timeout`` seconds.

    :raises DeliveryError: no connection, no complete answer in time, or a status other than 2xx.
    """
    import ssl  # loaded on first use: most runs post nothing

    deadline = time.monotonic() + timeout
    if url.scheme == "https" and tls is None:
        tls = ssl.create_default_context()
    head = [
        f"POST {url.target} HTTP/1.1",
        f"Host: {url.host_header}",
        "User-Agent: pytracee",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if url.authorization:
        head.append(f"Authorization: {url.authorization}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    try:
        sock = _connect(url, deadline, timeout, tls if url.scheme == "https" else None)
        with sock:
            sock.settimeout(_remaining(deadline, timeout))
            sock.sendall(request)  # Python bounds the whole sendall by the timeout
            status, reason = _read_status(sock, deadline, timeout)
    except TimeoutError:
        raise DeliveryError(f"no complete answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS: {exc.reason or exc}") from None
    except OSError as exc:
        raise DeliveryError(f"{exc.strerror or exc}") from None
    if not 200 <= status < 300:
        reason = "".join(c if " " <= c <= "~" else "?" for c in reason[:80])
        extra = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise DeliveryError(f"answered {status} {reason}".rstrip() + extra)


# --- the sender ------------------------------------------------------------------------------------

_STOP: Final = object()


def _positive_seconds(name: str, value: float, zero_ok: bool = False) -> float:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        allowed = "0 or more" if zero_ok else "more than 0"
        raise ConfigError(f"{name} must be a finite number of seconds, {allowed}, not {value!r}")
    return float(value)


class WebhookSender(Sink):
    """POSTs each finding, rendered by a template, to a URL, from a background thread.

    :raises ConfigError: for a URL that is not http(s), or an impossible timeout, queue size or content type.
    """

    def __init__(
        self,
        url: str,
        template: FindingTemplate,
        content_type: str = "application/json",
        timeout: float = DEFAULT_TIMEOUT,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        super().__init__()
        try:
            self.url = WebhookURL.parse(url)
        except ValueError as exc:
            raise ConfigError(f"--webhook {url!r}: {exc}") from None
        if not _HEADER_VALUE.fullmatch(content_type):
            raise ConfigError(f"--webhook-content-type {content_type!r}: only printable ASCII is allowed")
        self.timeout = _positive_seconds("--webhook-timeout", timeout)
        self.drain_timeout = _positive_seconds("--webhook-drain-timeout", drain_timeout, zero_ok=True)
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"--webhook-queue must be 1 or more, not {queue_size!r}")
        self.template = template
        self.content_type = content_type
        self.queue_size = queue_size
        self._tls: ssl.SSLContext | None = None
        if self.url.scheme == "https":
            import ssl  # only for an https:// webhook

            self._tls = ssl.create_default_context()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._queued_bytes = 0
        self.accepted = self.delivered = self.failed_requests = self.not_rendered = 0
        self.dropped_full = self.dropped_at_end = 0
        self._reported = 0
        self._drops = Throttle(logging.WARNING)

    # --- counts ---

    @property
    def failed_count(self) -> int:
        """Findings not rendered, or posted and not delivered."""
        return self.not_rendered + self.failed_requests

    @property
    def unreported(self) -> int:
        """Findings failed or dropped that the session has not been told of yet (it is, from
        the main thread, at the next finding and at the end)."""
        with self._lock:
            return self.failed_count + self.dropped - self._reported

    @property
    def queued(self) -> int:
        """Findings waiting in the queue now."""
        return self._queue.qsize()

    @property
    def dropped(self) -> int:
        """Findings never posted: the queue was full, or the end came first."""
        return self.dropped_full + self.dropped_at_end

    def _report(self) -> None:
        """Hand the failures and drops counted so far to the session (main thread only)."""
        with self._lock:
            lost = self.failed_count + self.dropped
            new, self._reported = lost - self._reported, lost
        self.count_failures(new)

    # --- the main thread ---

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        sig_id = finding.sig_metadata.id
        try:
            body = self.template.render(finding).encode("utf-8", "backslashreplace")
        except TemplateError as exc:
            with self._lock:
                self.not_rendered += 1
            urgent = isinstance(exc, TemplateDisabledError)
            self.errors(f"webhook {self.url.display}: finding of {sig_id} not rendered: {exc}", urgent=urgent)
            self._report()
            return
        with self._lock:
            closed = self._closed
            full = self._queued_bytes + len(body) > MAX_QUEUED_BYTES
            if not full and not closed:
                self._queued_bytes += len(body)
        if closed:
            with self._lock:
                self.dropped_at_end += 1
        elif full:
            self._drop(f"{MAX_QUEUED_BYTES >> 20} MiB of findings waiting")
        else:
            self._start()
            try:
                self._queue.put_nowait((sig_id, body))
            except queue.Full:
                with self._lock:
                    self._queued_bytes -= len(body)
                self._drop(f"{self.queue_size} findings waiting")
            else:
                with self._lock:
                    self.accepted += 1
        self._report()

    def confirm(self, timeout: float) -> bool:
        """Wait (``timeout`` s at most) until every finding queued so far was posted or failed;
        False when that did not happen in time, or when any finding was lost since the start
        (not rendered, failed, dropped). A message bus acknowledges its events only after this."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                settled = self.accepted == self.delivered + self.failed_requests
                lost = self.failed_count + self.dropped
            if settled or lost or time.monotonic() >= deadline:
                return settled and not lost
            time.sleep(0.01)

    def _drop(self, why: str) -> None:
        with self._lock:
            self.dropped_full += 1
        self._drops(f"webhook {self.url.display}: the queue is full ({why}); dropping new findings")

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_all, name="pytracee-webhook", daemon=True)
            self._thread.start()

    @hookimpl(trylast=True)  # after the other outputs: an interrupt while waiting cuts short only this
    def tracee_sessionfinish(self) -> None:
        interrupt: KeyboardInterrupt | None = None
        if self._thread is not None:
            deadline = time.monotonic() + self.drain_timeout
            try:
                self._queue.put(_STOP, timeout=self.drain_timeout)
                self._thread.join(max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
            except KeyboardInterrupt as exc:  # counted and reported below, then passed on
                interrupt = exc
        with self._lock:
            self._closed = True  # from now on the thread records nothing
            self.dropped_at_end = self.accepted - self.delivered - self.failed_requests
        self._report()
        self.errors.flush()
        self._drops.flush()
        counts = f"{self.delivered} delivered, {self.failed_count} failed, {self.dropped} dropped"
        if self.dropped:
            end = "an interrupt" if interrupt is not None else f"the {self.drain_timeout:g} s drain"
            counts += f" ({self.dropped_full} with the queue full, {self.dropped_at_end} still queued after {end})"
        (log.warning if self.failed_count or self.dropped else log.info)("webhook %s: %s", self.url.display, counts)
        if interrupt is not None:
            raise interrupt

    # --- the sender thread ---

    def _send_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            sig_id, body = cast("tuple[str, bytes]", item)
            with self._lock:
                self._queued_bytes -= len(body)
                if self._closed:
                    return
            try:
                post(self.url, body, self.content_type, self.timeout, self._tls)
                problem = None
            except DeliveryError as exc:
                problem = str(exc)
            except Exception as exc:  # noqa: BLE001 - never let the thread die and the queue fill up silently
                problem = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if self._closed:
                    return
                if problem is None:
                    self.delivered += 1
                else:
                    self.failed_requests += 1
            if problem is not None:
                self.errors(f"webhook {self.url.display}: finding of {sig_id} not delivered: {problem}")
