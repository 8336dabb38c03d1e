"""Publishing findings to JetStream: ``--output nats://...`` (``--findings-output`` in ``tracee``).

:class:`NatsFindingOutput` is an output plugin. Each finding is rendered with
``--output-template`` (``rawjson`` unless another template is chosen: the JSON that
falcosidekick and SIEMs take) and published to ``SUBJECT.<host>``, where ``<host>`` is
the triggering event's ``hostName`` made into one subject token (the local host's name
when the event has none). The findings stream (``TRACEE_FINDINGS``, or ``stream=``)
is created when no stream captures the subject yet.

Every finding carries a ``Nats-Msg-Id`` derived from what it says: the signature,
the finding's data as the signature emitted it (before any enrichment: the process
ancestry, a syscall event or an artifact's digest depend on what the worker saw before)
and the triggering event as it was read. The same event processed twice (by a worker that
died before acknowledging it, then by the one that took over) gives findings with the same
id, which the stream's duplicate window stores once.

Publishing is bounded and counted (:class:`~pytracee.engine.bus.publisher.JetStreamPublisher`,
``buffer=`` in the address): findings dropped or not stored count as not delivered
(exit status 1), and the end of the run logs ``N findings published, ...``.
"""

from __future__ import annotations

import hashlib
import logging
import socket

import orjson

from ..errors import ConfigError
from ..findings import Finding
from ..hookspecs import hookimpl
from ..output.sink import Sink
from ..output.templates import FindingTemplate, TemplateError
from .address import BusAddress, check_name, check_subject, subject_token
from .connection import BusConnection, BusCredentials, BusError
from .partitions import DEFAULT_FINDINGS_STREAM, ensure_findings_stream
from .publisher import DEFAULT_BUFFER, JetStreamPublisher

__all__ = ["NatsFindingOutput", "finding_id"]

log = logging.getLogger("pytracee.output")

QUERY_KEYS = ("host", "buffer", "stream", "drain")


def finding_id(finding: Finding) -> str:
    """The finding's message id: a digest of the signature, the finding's data and the
    triggering event's JSON as read (the same for the same finding of the same event).

    Call it before the finding is enriched: enrichment depends on the worker's state.
    """
    digest = hashlib.sha256(finding.sig_metadata.id.encode())
    event = finding.event
    digest.update(event.text if event.text is not None else orjson.dumps(event.raw, option=orjson.OPT_SORT_KEYS))
    digest.update(b"\0")
    digest.update(orjson.dumps(finding.data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr))
    return digest.hexdigest()[:40]


class NatsFindingOutput(Sink):
    """Publishes findings to ``SUBJECT.<host>`` on JetStream (see the module's description).

    :raises ConfigError: for a bad address or no server.
    """

    def __init__(self, url: str, option: str, template: FindingTemplate, credentials: BusCredentials) -> None:
        super().__init__()
        try:
            address = BusAddress.parse(url, option)
            address.check_keys(QUERY_KEYS, option)
            self.subject = check_subject(address.path, "subject")
            self.stream = check_name(address.query.get("stream", DEFAULT_FINDINGS_STREAM), "stream")
            buffer = int(address.number("buffer", DEFAULT_BUFFER, 1, 10_000_000))
            self.drain = address.number("drain", 10, 0, 3600)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.address = address
        self.template = template
        self.local_host = subject_token(address.query.get("host") or socket.gethostname())
        self.bus = BusConnection(address, credentials, name="pytracee findings")
        try:
            self.bus.connect()
            self.bus.call(ensure_findings_stream(self.bus, self.stream, self.subject), 10)
        except BusError as exc:
            self.bus.close()
            raise ConfigError(f"{option} {exc}") from None
        self.publisher = JetStreamPublisher(self.bus, "findings", buffer)
        self.publisher.start()
        self._reported = 0
        self._closed = False
        #: The finding being delivered and its id, taken before the other plugins enriched it.
        self._identified: tuple[Finding, str] | None = None

    def _report(self) -> None:
        lost = self.publisher.stats.lost
        new, self._reported = lost - self._reported, lost
        self.count_failures(new)

    @hookimpl(tryfirst=True)
    def tracee_finding_enrich(self, finding: Finding) -> None:
        """Take the finding's id before any enrichment (see :func:`finding_id`)."""
        self._identified = (finding, finding_id(finding))

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        try:
            body = self.template.render(finding).encode("utf-8", "backslashreplace")
        except TemplateError as exc:
            self.failed(f"{self.address.display}: finding of {finding.sig_metadata.id} not rendered: {exc}")
            return
        identified, self._identified = self._identified, None
        msg_id = identified[1] if identified is not None and identified[0] is finding else finding_id(finding)
        host = subject_token(finding.event.host_name, self.local_host)
        self.publisher.submit(f"{self.subject}.{host}", body, msg_id)
        self._report()

    def confirm(self, timeout: float) -> bool:
        """Wait until every finding so far is stored or failed; False if any was lost since the start."""
        settled = self.publisher.flush(timeout)
        self._report()
        return settled and self.publisher.stats.lost == 0

    @hookimpl(trylast=True)
    def tracee_sessionfinish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.publisher.close(self.drain)
        self._report()
        stats = self.publisher.stats
        (log.warning if stats.lost else log.info)("%s: %s", self.address.display, stats.describe("findings"))
        self.bus.close()
