"""The streams and their partitioning: which events a worker sees, in which order.

Hosts publish each event to ``PREFIX.<host>`` (``tracee.events.web-1``). The
events stream captures ``PREFIX.*`` and, as it stores each message, rewrites its
subject with JetStream's deterministic subject mapping::

    PREFIX.*   ->   PREFIX.{{partition(N,1)}}.{{wildcard(1)}}

``partition(N,1)`` hashes the host token into one of ``N`` partitions: every event
of a host lands in the same partition, in the order the server received it, and
the assignment never changes while ``N`` stays the same. Each partition is read
through its own durable consumer ``NAME-pK`` (filter ``PREFIX.K.*``, each
message acknowledged on its own), and each
partition has at most one worker at a time (:mod:`~pytracee.engine.bus.leases`).

Findings go to a second stream (``TRACEE_FINDINGS`` by default, capturing the
findings subject and what is below it) with a duplicate window: each finding
carries a ``Nats-Msg-Id`` made from its content, so a finding published again
after a worker died is stored once. Messages no worker can read go to the
dead-letter subject ``deadletter.<STREAM>.<consumer>`` (stream
``<STREAM>_DEADLETTER``), with why in their headers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from .connection import BusConnection, BusError

if TYPE_CHECKING:
    from nats.js.api import StreamInfo

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_EVENT_STREAM",
    "DEFAULT_EVENT_SUBJECT",
    "DEFAULT_FINDINGS_STREAM",
    "DEFAULT_PARTITIONS",
    "ensure_event_stream",
    "ensure_findings_stream",
    "partition_subject",
]

DEFAULT_EVENT_STREAM: Final = "TRACEE_EVENTS"
DEFAULT_EVENT_SUBJECT: Final = "tracee.events"
DEFAULT_FINDINGS_STREAM: Final = "TRACEE_FINDINGS"
DEFAULT_PARTITIONS: Final = 8
#: Seconds a message id is remembered (JetStream's default is 2 minutes).
DEFAULT_DUPLICATE_WINDOW: Final = 600.0
_DEST: Final = re.compile(
    r"^(?P<prefix>.+)\.\{\{\s*partition\(\s*(?P<n>\d+)\s*,\s*1\s*\)\s*\}\}\.\{\{\s*wildcard\(1\)\s*\}\}$"
)


def partition_subject(prefix: str, partition: int) -> str:
    """The stored subjects of one partition: ``PREFIX.K.*``."""
    return f"{prefix}.{partition}.*"


def _partitioning(info: StreamInfo) -> tuple[str, int] | None:
    transform = info.config.subject_transform
    if transform is None:
        return None
    match = _DEST.match(transform.dest)
    if match is None or transform.src != f"{match['prefix']}.*":
        return None
    return match["prefix"], int(match["n"])


async def ensure_event_stream(
    bus: BusConnection, stream: str, prefix: str, partitions: int, max_age: float = 0
) -> tuple[str, int]:
    """The events stream's ``(subject prefix, partitions)``, creating the stream if it is missing.

    An existing stream keeps its own settings (they win over ``prefix`` and ``partitions``).

    :raises BusError: the stream exists but is not partitioned as described above.
    """
    from nats.js.api import StreamConfig, SubjectTransform
    from nats.js.errors import NotFoundError

    js = bus.js
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        config = StreamConfig(
            name=stream,
            description="Tracee events, partitioned by host",
            subjects=[f"{prefix}.*"],
            subject_transform=SubjectTransform(
                src=f"{prefix}.*", dest=f"{prefix}.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}"
            ),
            duplicate_window=DEFAULT_DUPLICATE_WINDOW if not max_age else min(max_age, DEFAULT_DUPLICATE_WINDOW),
            max_age=max_age or None,
        )
        try:
            info = await js.add_stream(config)
        except Exception as exc:
            if "already in use" not in str(exc):  # another worker created it meanwhile
                raise
            info = await js.stream_info(stream)
    found = _partitioning(info)
    if found is None:
        raise BusError(
            f"stream {stream} is not partitioned by host: expected the subject transform "
            f"{prefix}.* -> {prefix}.{{{{partition(N,1)}}}}.{{{{wildcard(1)}}}}"
        )
    return found


async def find_stream(bus: BusConnection, subject: str) -> str | None:
    """The stream capturing ``subject``, or None."""
    from nats.js.errors import NotFoundError

    try:
        return await bus.js.find_stream_name_by_subject(subject)
    except NotFoundError:
        return None


async def ensure_findings_stream(bus: BusConnection, stream: str, subject_prefix: str) -> str:
    """The stream capturing ``subject_prefix.<host>``: an existing one, or ``stream`` created
    with subjects ``PREFIX`` and ``PREFIX.>`` and a duplicate window."""
    from nats.js.api import StreamConfig

    existing = await find_stream(bus, f"{subject_prefix}.x")
    if existing is not None:
        return existing
    try:
        await bus.js.add_stream(
            StreamConfig(
                name=stream,
                description="findings of pytracee signatures",
                subjects=[subject_prefix, f"{subject_prefix}.>"],
                duplicate_window=DEFAULT_DUPLICATE_WINDOW,
            )
        )
    except Exception as exc:
        if "already in use" not in str(exc):
            raise
        if await find_stream(bus, f"{subject_prefix}.x") != stream:  # a stream of that name for other subjects
            raise BusError(
                f"stream {stream} exists and does not capture {subject_prefix}.>: choose another with ?stream=NAME"
            ) from None
    return stream
