"""Container identity on events: name, image, digest and pod, from the runtimes, never waited for.

The collector puts the container id (from the cgroup) on each event. The
:class:`ContainerResolver` turns it into what the runtime knows: it answers from its
cache at once and asks the runtimes (:mod:`~pytracee.engine.context.runtimes`) in a background
thread, so the event path never waits for a socket. A container's first events go on
with the id alone; once the answer is in, its events carry the rest. Answers are kept
``ttl`` seconds (then asked again, the old answer still served meanwhile); a container
no runtime knows is asked again after ``negative_ttl``; at most ``max_entries`` are kept.

:meth:`ContainerResolver.enrich` writes the fields in the event's own layout:

* v0.24: ``container{id, name, image, imageDigest}`` and
  ``kubernetes{podName, podNamespace, podUID, podSandbox}``;
* v0.8 (flat): ``containerName``, ``containerImage``, ``podName``, ``podNamespace``, ``podUID``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..schema import is_flat_layout
from .runtimes import ContainerInfo, RuntimeClient, RuntimeQueryError

__all__ = ["DEFAULT_TTL", "ContainerResolver"]

#: Seconds an answer is kept before the runtime is asked again.
DEFAULT_TTL: Final = 60.0
#: Seconds before a container no runtime knew is asked about again.
DEFAULT_NEGATIVE_TTL: Final = 5.0
#: Containers kept.
DEFAULT_MAX_ENTRIES: Final = 4096
#: Containers waiting to be looked up; beyond it, new ids wait for a later event.
QUEUE_MAX: Final = 1024

log = logging.getLogger("pytracee.containers")


class _Entry:
    __slots__ = ("container", "done", "expires", "info", "kubernetes", "pending")

    def __init__(self) -> None:
        self.info: ContainerInfo | None = None
        self.container: dict[str, Any] | None = None  # the v0.24 objects, built once, shared
        self.kubernetes: dict[str, Any] | None = None
        self.expires = 0.0
        self.pending = True
        self.done = threading.Event()


def container_id(raw: Mapping[str, Any]) -> str:
    """The event's container ID (``container.id``, else ``containerId``); ``""`` when none is a string."""
    container = raw.get("container")
    if isinstance(container, dict) and isinstance(container.get("id"), str) and container["id"]:
        return str(container["id"])
    cid = raw.get("containerId")
    return cid if isinstance(cid, str) else ""


class ContainerResolver:
    """An asynchronous cache of container identities (see the module docstring).

    :param clients: the runtimes to ask, in order; the first that knows the id answers.
    """

    def __init__(
        self,
        clients: Sequence[RuntimeClient],
        *,
        ttl: float = DEFAULT_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.clients = list(clients)
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._queue: queue.Queue[str | None] = queue.Queue(QUEUE_MAX)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._errors_logged: set[str] = set()
        #: Outcomes: resolved, unknown (no runtime knew it), errors, queue full.
        self.counts: Counter[str] = Counter()

    # --- the event path ------------------------------------------------------------------

    def lookup(self, container_id: str) -> ContainerInfo | None:
        """What is known about the container now; asks the runtimes in the background if needed."""
        entry = self._cache.get(container_id)
        if entry is not None and (entry.pending or entry.expires > time.monotonic()):
            return entry.info
        return self._schedule(container_id, entry)

    def wait(self, container_id: str, timeout: float) -> ContainerInfo | None:
        """:meth:`lookup`, waiting up to ``timeout`` seconds for a lookup under way."""
        info = self.lookup(container_id)
        entry = self._cache.get(container_id)
        if info is None and entry is not None and entry.pending and timeout > 0:
            entry.done.wait(timeout)
            return entry.info
        return info

    def enrich(self, raw: dict[str, Any]) -> bool:
        """Add the container's identity to an event in its layout; False when not (yet) known."""
        cid = container_id(raw)
        if not cid or self.lookup(cid) is None:
            return False
        entry = self._cache.get(cid)
        if entry is None or entry.container is None or entry.kubernetes is None or entry.info is None:
            return False
        if is_flat_layout(raw) or ("container" not in raw and "containerImage" in raw):
            info = entry.info
            raw["containerName"] = info.name
            raw["containerImage"] = info.image
            raw["podName"] = info.pod_name
            raw["podNamespace"] = info.pod_namespace
            raw["podUID"] = info.pod_uid
        else:
            raw["container"] = entry.container
            raw["kubernetes"] = entry.kubernetes
        return True

    # --- the background lookups ------------------------------------------------------------

    def _schedule(self, container_id: str, stale: _Entry | None) -> ContainerInfo | None:
        with self._lock:
            entry = self._cache.get(container_id)
            if entry is not None and entry is not stale:
                return entry.info
            new = _Entry()
            if stale is not None:  # served until the new answer comes
                new.info, new.container, new.kubernetes = stale.info, stale.container, stale.kubernetes
            try:
                self._queue.put_nowait(container_id)
            except queue.Full:
                self.counts["queue full"] += 1
                return stale.info if stale is not None else None
            self._cache[container_id] = new
            self._cache.move_to_end(container_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="pytracee-containers", daemon=True)
                self._thread.start()
            return new.info

    def _work(self) -> None:
        while True:
            container_id = self._queue.get()
            if container_id is None:
                return
            info = self._ask(container_id)
            with self._lock:
                entry = self._cache.get(container_id)
                if entry is None:
                    continue
                if info is not None:
                    entry.info = info
                    entry.container = {
                        "id": container_id,
                        "name": info.name,
                        "image": info.image,
                        "imageDigest": info.image_digest,
                    }
                    entry.kubernetes = {
                        "podName": info.pod_name,
                        "podNamespace": info.pod_namespace,
                        "podUID": info.pod_uid,
                        "podSandbox": info.pod_sandbox,
                    }
                entry.expires = time.monotonic() + (
                    self.ttl if info is not None or entry.info is not None else self.negative_ttl
                )
                entry.pending = False
            entry.done.set()

    def _ask(self, container_id: str) -> ContainerInfo | None:
        for client in self.clients:
            try:
                info = client.inspect(container_id)
            except RuntimeQueryError as exc:
                self.counts["errors"] += 1
                if client.socket not in self._errors_logged:  # once per runtime
                    self._errors_logged.add(client.socket)
                    log.warning("container lookups: %s", exc)
                continue
            except Exception as exc:
                self.counts["errors"] += 1
                log.debug("container lookup of %s failed: %s", container_id, exc, exc_info=True)
                continue
            if info is not None:
                self.counts["resolved"] += 1
                return info
        self.counts["unknown"] += 1
        return None

    def close(self) -> None:
        """Stop the background thread."""
        thread = self._thread
        if thread is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        thread.join(QUEUE_JOIN_SECONDS)
        self._thread = None
        for client in self.clients:
            close = getattr(client, "close", None)
            if close is not None:
                close()


QUEUE_JOIN_SECONDS: Final = 5.0
