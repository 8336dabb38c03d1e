"""Events and findings over NATS JetStream: hosts publish, a pool of workers detects.

::

    hosts: tracee --output nats://bus:4222/tracee.events      (tracee.events.<host>)
        -> stream TRACEE_EVENTS, partitioned by host (subject mapping)
        -> workers: tracee-rules --input nats://bus:4222/TRACEE_EVENTS?consumer=detect
                                 --output nats://bus:4222/tracee.findings
        -> stream TRACEE_FINDINGS (tracee.findings.<host>) -> SIEM, falcosidekick

The modules, one concept each (this package imports only the light ones, so that a
command line without a ``nats://`` address does not load asyncio):

* :mod:`.address`: ``nats://`` addresses and subject checks;
* :mod:`.credentials`: credentials and TLS (``--nats-*``) and :class:`BusError`, without asyncio;
* :mod:`.connection`: a connection for synchronous code (asyncio on a thread);
* :mod:`.publisher`: bounded, ordered, counted publishing with reconnects;
* :mod:`.partitions`: the streams and the partitioning by host;
* :mod:`.leases`: which worker reads which partition;
* :mod:`.source`: the worker's :class:`~pytracee.engine.sources.EventSource`;
* :mod:`.findings`: the findings output plugin.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .address import is_bus_url
from .credentials import BusCredentials, BusError, add_bus_options

if TYPE_CHECKING:
    from ..session import Session
    from .source import NatsEventSource

__all__ = ["BusCredentials", "BusError", "add_bus_options", "is_bus_url", "open_bus_input"]


def open_bus_input(url: str, options: argparse.Namespace, session: Session) -> NatsEventSource:
    """The worker source for ``--input nats://...``, its acknowledgements tied to the
    session's outputs: a batch is acknowledged once the ``nats://`` findings output
    confirms its findings stored and the webhooks posted them (other outputs: once
    standard output is flushed).

    :raises ValueError: a bad address; :raises BusError: no server, or a stream that does not fit.
    """
    from ..output.webhook import WebhookSender
    from ..reader import DEFAULT_MAX_LINE_SIZE
    from .findings import NatsFindingOutput
    from .source import NatsEventSource

    outputs = [p for p in session.pm.get_plugins() if isinstance(p, NatsFindingOutput | WebhookSender)]

    def confirm(timeout: float) -> bool:
        if sys.stdout is not None:
            sys.stdout.flush()
        return all(output.confirm(timeout) for output in outputs)

    source = NatsEventSource(
        url,
        BusCredentials.from_options(options),
        is_known_event=session.is_known_event,
        confirm=confirm,
        max_size=getattr(options, "max_line_size", DEFAULT_MAX_LINE_SIZE),
    )
    source.open()
    return source
