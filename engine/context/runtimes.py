"""Container runtime clients: what a runtime knows about a container id.

* :class:`DockerClient`: the Docker Engine API over its unix socket
  (``GET /containers/ID/json``, then ``GET /images/IMAGE/json``); Podman serves the
  same API on its socket (``/run/podman/podman.sock``).
* :class:`ContainerdClient`: containerd's gRPC API over its socket (namespaces, then
  the container in each, then its image), with the few protobuf messages it needs
  encoded here, so no generated code is required.

Each returns a :class:`ContainerInfo`, or None when the runtime does not know the
container; errors of the transport raise :class:`RuntimeQueryError`. Kubernetes pod
data comes from the labels the kubelet sets (``io.kubernetes.pod.name``, ``.namespace``,
``.uid``), as in Tracee.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = [
    "DEFAULT_SOCKETS",
    "ContainerInfo",
    "ContainerdClient",
    "DockerClient",
    "RuntimeClient",
    "RuntimeQueryError",
    "client_for",
]

POD_NAME_LABEL: Final = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL: Final = "io.kubernetes.pod.namespace"
POD_UID_LABEL: Final = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL: Final = "io.kubernetes.container.name"
_SANDBOX_LABELS: Final = (("io.kubernetes.docker.type", "podsandbox"), ("io.cri-containerd.kind", "sandbox"))
#: Default sockets per runtime (Tracee's).
DEFAULT_SOCKETS: Final[Mapping[str, str]] = {
    "docker": "/var/run/docker.sock",
    "containerd": "/var/run/containerd/containerd.sock",
    "podman": "/var/run/podman/podman.sock",
}
#: Time allowed for one query to a runtime.
QUERY_TIMEOUT: Final = 2.0
#: Largest answer read from a runtime.
MAX_ANSWER: Final = 4 << 20


class RuntimeQueryError(Exception):
    """A runtime could not be asked (socket missing, refused, timed out, bad answer)."""


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What the runtime says about one container."""

    id: str
    runtime: str
    name: str = ""
    image: str = ""
    image_digest: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def pod_name(self) -> str:
        """The Kubernetes pod (label ``io.kubernetes.pod.name``)."""
        return self.labels.get(POD_NAME_LABEL, "")

    @property
    def pod_namespace(self) -> str:
        """The pod's namespace (label ``io.kubernetes.pod.namespace``)."""
        return self.labels.get(POD_NAMESPACE_LABEL, "")

    @property
    def pod_uid(self) -> str:
        """The pod's uid (label ``io.kubernetes.pod.uid``)."""
        return self.labels.get(POD_UID_LABEL, "")

    @property
    def pod_sandbox(self) -> bool:
        """The container is the pod's sandbox (pause) container."""
        return any(self.labels.get(key) == value for key, value in _SANDBOX_LABELS)


class RuntimeClient(Protocol):
    """Asks one runtime about container ids."""

    name: str
    socket: str

    def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container, or None when the runtime does not know it."""
        ...


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


class DockerClient:
    """The Docker Engine API (also Podman's Docker-compatible API) over a unix socket."""

    def __init__(self, socket_path: str = DEFAULT_SOCKETS["docker"], name: str = "docker") -> None:
        self.socket = socket_path
        self.name = name

    def _get(self, path: str) -> Any:
        import http.client  # with ssl: loaded when a daemon is first asked, not at start-up

        from .unixhttp import UnixHTTPConnection

        conn = UnixHTTPConnection(self.socket, QUERY_TIMEOUT)
        try:
            conn.request("GET", path, headers={"Host": "docker"})
            response = conn.getresponse()
            body = response.read(MAX_ANSWER + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise RuntimeQueryError(f"{self.name} at {self.socket}: {exc}") from None
        finally:
            conn.close()
        if response.status == 404:
            return None
        if response.status != 200 or len(body) > MAX_ANSWER:
            raise RuntimeQueryError(f"{self.name} at {self.socket}: GET {path}: HTTP {response.status}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RuntimeQueryError(f"{self.name} at {self.socket}: GET {path}: {exc}") from None

    def inspect(self, container_id: str) -> ContainerInfo | None:
        """``GET /containers/ID/json`` and the image's ``GET /images/ID/json``."""
        quoted = urllib.parse.quote(container_id, safe="")
        data = self._get(f"/containers/{quoted}/json")
        if not isinstance(data, dict):
            return None
        config: dict[str, Any] = data["Config"] if isinstance(data.get("Config"), dict) else {}
        labels = _labels(config.get("Labels"))
        image = str(config.get("Image") or "")
        image_id = str(data.get("Image") or "")
        digest = image_id
        if image_id:
            try:
                image_data = self._get(f"/images/{urllib.parse.quote(image_id, safe='')}/json")
            except RuntimeQueryError:
                image_data = None
            if isinstance(image_data, dict):
                tags = image_data.get("RepoTags") or []
                digests = image_data.get("RepoDigests") or []
                if tags and isinstance(tags[0], str) and image.startswith("sha256:"):
                    image = tags[0]
                if digests and isinstance(digests[0], str):
                    digest = digests[0]
        return ContainerInfo(
            id=str(data.get("Id") or container_id),
            runtime=self.name,
            name=str(data.get("Name") or "").removeprefix("/"),
            image=image,
            image_digest=digest,
            labels=labels,
        )


# --- containerd: gRPC with hand-encoded protobuf ----------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb_string(number: int, value: str) -> bytes:
    data = value.encode()
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _pb_fields(data: bytes) -> dict[int, list[Any]]:
    """Decode one protobuf message: field number -> values (ints, or bytes for length-delimited)."""
    fields: dict[int, list[Any]] = {}
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end or shift > 63:
                raise RuntimeQueryError("containerd: truncated protobuf varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        number, kind = key >> 3, key & 7
        value: Any
        if kind == 0:
            value = varint()
        elif kind == 2:
            length = varint()
            value, pos = data[pos : pos + length], pos + length
        elif kind == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif kind == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise RuntimeQueryError(f"containerd: unsupported protobuf wire type {kind}")
        fields.setdefault(number, []).append(value)
    return fields


def _pb_str(fields: Mapping[int, list[Any]], number: int) -> str:
    values = fields.get(number)
    return bytes(values[0]).decode(errors="replace") if values else ""


def _pb_map(fields: Mapping[int, list[Any]], number: int) -> dict[str, str]:
    out = {}
    for entry in fields.get(number, []):
        kv = _pb_fields(bytes(entry))
        out[_pb_str(kv, 1)] = _pb_str(kv, 2)
    return out


class ContainerdClient:
    """containerd's gRPC API: the container in whichever namespace holds it, and its image."""

    def __init__(self, socket_path: str = DEFAULT_SOCKETS["containerd"], name: str = "containerd") -> None:
        import grpc  # type: ignore[import-untyped]  # imported when a containerd socket is configured

        self.socket = socket_path
        self.name = name
        self._grpc = grpc
        self._channel = grpc.insecure_channel(f"unix://{socket_path}")

    def _call(self, method: str, request: bytes, namespace: str = "") -> bytes:
        grpc = self._grpc
        stub = self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        metadata = (("containerd-namespace", namespace),) if namespace else None
        try:
            answer: bytes = stub(request, timeout=QUERY_TIMEOUT, metadata=metadata)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise LookupError(method) from None
            raise RuntimeQueryError(f"containerd at {self.socket}: {method}: {exc.code().name}") from None
        if len(answer) > MAX_ANSWER:
            raise RuntimeQueryError(f"containerd at {self.socket}: {method}: answer too large")
        return answer

    def namespaces(self) -> list[str]:
        """The containerd namespaces (``moby`` for Docker, ``k8s.io`` for Kubernetes ...)."""
        answer = _pb_fields(self._call("/containerd.services.namespaces.v1.Namespaces/List", b""))
        return [_pb_str(_pb_fields(bytes(ns)), 1) for ns in answer.get(1, [])]

    def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container (its labels and image) from the first namespace that has it."""
        for namespace in self.namespaces():
            try:
                answer = self._call(
                    "/containerd.services.containers.v1.Containers/Get", _pb_string(1, container_id), namespace
                )
            except LookupError:
                continue
            container = _pb_fields(bytes(_pb_fields(answer).get(1, [b""])[0]))
            labels = _pb_map(container, 2)
            image = _pb_str(container, 3)
            digest = ""
            if image:
                try:
                    found = self._call("/containerd.services.images.v1.Images/Get", _pb_string(1, image), namespace)
                    target = _pb_fields(bytes(_pb_fields(bytes(_pb_fields(found).get(1, [b""])[0])).get(3, [b""])[0]))
                    digest = _pb_str(target, 2)
                except LookupError:
                    pass
            return ContainerInfo(
                id=_pb_str(container, 1) or container_id,
                runtime=self.name,
                name=labels.get(CONTAINER_NAME_LABEL, ""),
                image=image,
                image_digest=digest,
                labels=labels,
            )
        return None

    def close(self) -> None:
        """Close the gRPC channel."""
        self._channel.close()


def client_for(runtime: str, socket_path: str) -> RuntimeClient:
    """The client of ``runtime`` (docker, podman, containerd) at ``socket_path``.

    :raises ValueError: for a runtime this module has no client for.
    """
    if runtime in ("docker", "podman"):
        return DockerClient(socket_path, runtime)
    if runtime == "containerd":
        return ContainerdClient(socket_path)
    raise ValueError(f"unknown container runtime {runtime!r} (docker, containerd, podman)")
