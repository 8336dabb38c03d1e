"""The ``trace.Event`` JSON schema: field layouts per Tracee era and their Go names.

Tracee serialized its Go ``trace.Event`` struct with ``encoding/json``, so every
field is present (zero values included) and keys follow the struct order. Two
layouts matter in practice:

* **v0.8** (tracee-ebpf, up to v0.12): flat ``containerId``/``containerImage``/
  ``containerName``/``podName``/``podNamespace``/``podUID`` fields, no ``syscall``.
* **v0.24** (v0.13 to v0.24.1): ``container{}`` and ``kubernetes{}`` objects,
  ``syscall``, ``executable{}``, entity ids, ``matchedPolicies``.

:func:`full_event` turns a (possibly partial) event dict into the complete
struct in the layout its own keys belong to; this is the ``Context`` of a
finding and the JSON of a collected event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["GO_FIELD_NAMES", "full_event", "is_flat_layout"]

# (json key, zero value) in the order Go's encoding/json emits them.
_V024_FIELDS: Final[tuple[tuple[str, Any], ...]] = (
    ("timestamp", 0),
    ("threadStartTime", 0),
    ("processorId", 0),
    ("processId", 0),
    ("cgroupId", 0),
    ("threadId", 0),
    ("parentProcessId", 0),
    ("hostProcessId", 0),
    ("hostThreadId", 0),
    ("hostParentProcessId", 0),
    ("userId", 0),
    ("mountNamespace", 0),
    ("pidNamespace", 0),
    ("processName", ""),
    ("executable", {"path": ""}),
    ("hostName", ""),
    ("containerId", ""),
    ("container", {}),
    ("kubernetes", {}),
    ("eventId", "0"),
    ("eventName", ""),
    ("matchedPolicies", None),  # omitempty
    ("argsNum", 0),
    ("returnValue", 0),
    ("syscall", ""),
    ("stackAddresses", None),
    ("contextFlags", {"containerStarted": False, "isCompat": False}),
    ("threadEntityId", 0),
    ("processEntityId", 0),
    ("parentEntityId", 0),
    ("args", None),
    ("metadata", None),  # omitempty; only on signature events
)

_V08_FIELDS: Final[tuple[tuple[str, Any], ...]] = (
    ("timestamp", 0),
    ("threadStartTime", 0),
    ("processorId", 0),
    ("processId", 0),
    ("cgroupId", 0),
    ("threadId", 0),
    ("parentProcessId", 0),
    ("hostProcessId", 0),
    ("hostThreadId", 0),
    ("hostParentProcessId", 0),
    ("userId", 0),
    ("mountNamespace", 0),
    ("pidNamespace", 0),
    ("processName", ""),
    ("hostName", ""),
    ("containerId", ""),
    ("containerImage", ""),
    ("containerName", ""),
    ("podName", ""),
    ("podNamespace", ""),
    ("podUID", ""),
    ("eventId", "0"),
    ("eventName", ""),
    ("argsNum", 0),
    ("returnValue", 0),
    ("stackAddresses", None),
    ("args", None),
    ("contextFlags", {"containerStarted": False}),
)

_OMIT_WHEN_EMPTY: Final = frozenset({"matchedPolicies", "metadata"})
_FLAT_CONTAINER_KEYS: Final = frozenset({"containerImage", "containerName", "podName", "podNamespace", "podUID"})

#: Go field name of ``trace.Event`` (as used in Tracee's Go templates) -> JSON key.
GO_FIELD_NAMES: Final[Mapping[str, str]] = {
    "Timestamp": "timestamp",
    "ThreadStartTime": "threadStartTime",
    "ProcessorID": "processorId",
    "ProcessID": "processId",
    "CgroupID": "cgroupId",
    "ThreadID": "threadId",
    "ParentProcessID": "parentProcessId",
    "HostProcessID": "hostProcessId",
    "HostThreadID": "hostThreadId",
    "HostParentProcessID": "hostParentProcessId",
    "UserID": "userId",
    "MountNS": "mountNamespace",
    "PIDNS": "pidNamespace",
    "ProcessName": "processName",
    "Executable": "executable",
    "HostName": "hostName",
    "ContainerID": "containerId",
    "ContainerImage": "containerImage",
    "ContainerName": "containerName",
    "PodName": "podName",
    "PodNamespace": "podNamespace",
    "PodUID": "podUID",
    "Container": "container",
    "Kubernetes": "kubernetes",
    "EventID": "eventId",
    "EventName": "eventName",
    "MatchedPolicies": "matchedPolicies",
    "ArgsNum": "argsNum",
    "ReturnValue": "returnValue",
    "Syscall": "syscall",
    "StackAddresses": "stackAddresses",
    "ContextFlags": "contextFlags",
    "ThreadEntityId": "threadEntityId",
    "ProcessEntityId": "processEntityId",
    "ParentEntityId": "parentEntityId",
    "Args": "args",
    "Metadata": "metadata",
}


def is_flat_layout(raw: Mapping[str, Any]) -> bool:
    """True for events in the v0.8 layout (flat container/pod fields, no ``container{}``)."""
    return "container" not in raw and not _FLAT_CONTAINER_KEYS.isdisjoint(raw)


def full_event(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the complete ``trace.Event`` JSON object for ``raw``.

    Missing fields get Go's zero values, ``eventId`` becomes a string, the
    v0.24 ``container.id`` and the flat ``containerId`` are kept in step, and
    keys ``raw`` has beyond the layout (say ``matchedScopes``) are kept at the end.
    """
    flat = is_flat_layout(raw)
    layout = _V08_FIELDS if flat else _V024_FIELDS
    out: dict[str, Any] = {}
    for key, zero in layout:
        if key in raw:
            value = raw[key]
        elif key in _OMIT_WHEN_EMPTY:
            continue
        else:
            value = dict(zero) if isinstance(zero, dict) else zero
        out[key] = value
    for key in _OMIT_WHEN_EMPTY:
        if key in out and not out[key]:
            del out[key]
    event_id = out.get("eventId")
    if not isinstance(event_id, str):
        out["eventId"] = str(event_id if event_id is not None else 0)
    if not flat:
        container = out["container"] if isinstance(out["container"], dict) else {}
        if not out["containerId"] and container.get("id"):
            out["containerId"] = container["id"]
        elif out["containerId"] and "id" not in container:
            out["container"] = {"id": out["containerId"], **container}
    for key, value in raw.items():
        if key not in out and key not in _OMIT_WHEN_EMPTY:
            out[key] = value
    return out
