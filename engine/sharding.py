"""Which worker owns a record under ``tracee-rules --workers`` (:mod:`~pytracee.engine.parallel`).

Every worker reads the whole input and handles only the records it owns: an event that will be
decoded goes by its container when it has one (all the container's processes together), else by
its host process (:func:`shard_of`), so that stateful signatures see every event of a process and
of a container in order; any other record goes by its line, so that it is counted and reported
once. :func:`record_owner` is that rule read off a record's text; the compiled loop of
``engine/_recscan.c`` (``_recscan_shards.h``, ``_recscan_owner.h``) applies the same one in place.
What a worker's process tree is shown of the records it does not own is :class:`ObserveOthers`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .envelope import guess_event_name, read_process_key

if TYPE_CHECKING:
    from .events import Event

__all__ = ["ObserveOthers", "placement_names", "record_owner", "shard_of"]


class ObserveOthers(NamedTuple):
    """What a shard's process tree needs of the records other shards own (``--workers``), so that
    it is the tree one process keeps: every fork, exec and exit, and the context of every event
    its owner decodes, in input order."""

    #: The events shown whoever owns them (fork, exec, exit).
    names: Collection[str]
    #: Shown such a decoded event (when it cannot be read in place).
    observer: Callable[[Event], object]
    #: Shown an event's ``(fields, args)`` read in place: its fields named in ``fields_read``, its
    #: arguments named in ``args_read[name]`` (none for events outside ``names``).
    observe_fields: Callable[[Mapping[str, Any], Mapping[str, Any]], object]
    fields_read: tuple[str, ...]
    args_read: Mapping[str, tuple[str, ...]]
    #: The tree's processes by host pid (:attr:`~pytracee.engine.context.proctree.ProcessTree.by_pid`):
    #: another shard's event whose process the tree knows is not shown (None: none is shown).
    processes: Mapping[int, Any] | None = None


def placement_names(
    wanted: Collection[str] | None, admissions: Mapping[str, Any], others: ObserveOthers | None
) -> tuple[frozenset[str] | None, frozenset[str]]:
    """What a sharded reader places records by: the events decoded (whole or by admission; None:
    every event), which go by process, and those every shard's process tree is shown (``others``)."""
    decoded = None if wanted is None else frozenset(wanted) | frozenset(admissions)
    return decoded, frozenset(others.names) if others is not None else frozenset()


def record_owner(text: bytes, line: int, count: int, decoded: Collection[str] | None, guess: str | None = None) -> int:
    """The shard (of ``count``) that handles the record ``text`` at ``line`` of its input, as the
    readers of ``EventReader(shard=...)`` agree on it: by its process key (:func:`shard_of`) when it
    will likely be decoded (``decoded``: the event names decoded whole or by admission, None: all;
    ``guess``: its name as :func:`~.envelope.guess_event_name` finds it), else by its line."""
    if decoded is not None:
        if guess is None:
            guess = guess_event_name(text)
        if guess and guess not in decoded:  # no guess: another layout, maybe wanted
            return line % count
    key = read_process_key(text)
    return line % count if key is None else shard_of(*key, count)


def shard_of(container_id: str, host_process_id: int, count: int) -> int:
    """The shard (of ``count``) of an event: by its container when it has one (all the
    container's processes together), else by its host process id."""
    if container_id:
        return zlib.crc32(container_id.encode("utf-8", "surrogateescape")) % count
    return host_process_id % count if type(host_process_id) is int else 0
