"""The event a signature sees: a ``trace.Event`` with typed accessors.

An :class:`Event` wraps the decoded JSON object of one Tracee event without
copying it. Context fields are properties (``event.name``, ``event.process_name``,
``event.origin`` ...); arguments are read by name with getters that accept both
the raw values Tracee emits by default and the strings it emits with
``option:parse-arguments``::

    if event.is_file_write() and event.str_arg("pathname").endswith("/release_agent"):
        ...

Missing or mistyped arguments raise :class:`ArgumentError`, which the engine
reports against the signature that asked (with the event's file and line).

A replayed event's arguments may have been read in place from its JSON text
(:data:`~pytracee.engine.recscan.split_args`): ``raw`` then decodes its ``args`` list on first
use, and :attr:`Event.fields` is the same object for reading the context without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from . import parsers
from .errors import ArgumentError, MalformedEventError
from .parsers import ArgumentValueError, SockAddr
from .recscan import args_of
from .schema import full_event

if TYPE_CHECKING:
    from .context.proctree import ProcessInfo
    from .context.state import EventContext

__all__ = [
    "LAZY_FIELDS",
    "ORIGIN_CONTAINER",
    "ORIGIN_CONTAINER_INIT",
    "ORIGIN_HOST",
    "Event",
    "LazyEvent",
    "container_id_of",
    "origin_of",
]

ORIGIN_HOST: Final = "host"
ORIGIN_CONTAINER: Final = "container"
ORIGIN_CONTAINER_INIT: Final = "container-init"

_MISSING: Any = object()
T = TypeVar("T")


def as_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` itself when it is a dict, as decoded events are (compiled code then reads it without
    a method call per field), else a copy of it."""
    return raw if isinstance(raw, dict) else dict(raw)


def container_id_of(raw: Mapping[str, Any]) -> str:
    """The container id of a raw event: ``container.id`` (v0.13+) or the flat ``containerId``."""
    fields = as_dict(raw)
    container = fields.get("container")
    if type(container) is dict and container.get("id"):
        return str(container["id"])
    return fields.get("containerId") or ""


def origin_of(raw: Mapping[str, Any]) -> str:
    """The origin of a raw event (see :attr:`Event.origin`); the engine's routing uses it too."""
    fields = as_dict(raw)
    flags = fields.get("contextFlags")
    if type(flags) is dict and flags.get("containerStarted"):
        return ORIGIN_CONTAINER
    return ORIGIN_CONTAINER_INIT if container_id_of(fields) else ORIGIN_HOST


class Event:
    """One Tracee event (``trace.Event``), read-only for signatures.

    :param raw: the decoded JSON object; kept as is and shared, never copied.
    :param source: the selector source, ``"tracee"`` for events from Tracee or our collector.
    :param where: the file the event was read from, for messages.
    :param line: its line there.
    :param text: the event's JSON text as read (one JSON line), when there is one;
        rule engines that parse JSON themselves take it instead of ``raw``.
    """

    __slots__ = (
        "_args",
        "_args_at",
        "_args_end",
        "_line",
        "_name",
        "_raw",
        "_where",
        "context",
        "source",
        "syscall_event",
        "text",
    )

    def __init__(
        self,
        raw: dict[str, Any],
        source: str = "tracee",
        where: str = "",
        line: int = 0,
        text: bytes | None = None,
        args: dict[str, Any] | None = None,
        args_span: tuple[int, int] = (0, 0),
    ) -> None:
        self._raw = raw
        self._name: str | None = None
        self.source = source
        self.text = text
        self._args: dict[str, Any] | None = args
        # with ``args`` read from ``text``: raw's "args" is null until raw is read (text[at:end] then)
        self._args_at, self._args_end = args_span
        self._where = where
        self._line = line
        #: The run's process tree, containers and hashes (set by the session before dispatch).
        self.context: EventContext | None = None
        #: Of an LSM event (``security_file_open``, ...): the syscall's event of the same call
        #: (``openat``, ...), once the syscall context paired them; it lives as long as this event.
        self.syscall_event: Event | None = None

    @property
    def raw(self) -> dict[str, Any]:
        """The decoded JSON object (``trace.Event``): shared, never copied."""
        if self._args_end:
            self._decode_args()
        return self._raw

    @raw.setter
    def raw(self, value: dict[str, Any]) -> None:
        self._raw = value
        self._name = None
        self._args_end = 0

    def _decode_args(self) -> None:
        """Put the ``args`` list, decoded from the text, into the object read without it."""
        text = self.text
        end, self._args_end = self._args_end, 0
        if text is not None:
            self._raw["args"] = orjson.loads(text[self._args_at : end])

    @property
    def fields(self) -> dict[str, Any]:
        """The decoded JSON object for reading the event's context (every member but ``args``,
        which may not be decoded yet: read arguments with :meth:`arg` and :attr:`args`, the whole
        object with :attr:`raw`)."""
        return self._raw

    def __reduce__(self) -> tuple[type[Event], tuple[dict[str, Any], str, str, int, bytes | None]]:
        """Pickled (a finding leaving its ``--workers`` process) as its JSON object and where it was
        read, without the run's context and the syscall's event: they stay in the process that read it."""
        return (Event, (self.raw, self.source, self._where, self._line, self.text))

    # --- context ---------------------------------------------------------------

    @property
    def name(self) -> str:
        """``eventName``, e.g. ``"security_file_open"``."""
        value = self._name
        if value is None:  # (read once: every consumer asks, and the dict's key is not the interned name)
            value = self._name = self.fields["eventName"]
        return value

    @property
    def event_id(self) -> int:
        """``eventId`` as an int (Tracee writes it as a string)."""
        return int(self.fields.get("eventId") or 0)

    @property
    def timestamp(self) -> int:
        """``timestamp`` in nanoseconds."""
        value: int = self.fields.get("timestamp", 0)
        return value

    @property
    def process_name(self) -> str:
        """``processName`` (the task's comm, at most 15 characters)."""
        value: str = self.fields.get("processName", "")
        return value

    @property
    def process_id(self) -> int:
        """``processId``: the pid inside the task's pid namespace."""
        value: int = self.fields.get("processId", 0)
        return value

    @property
    def thread_id(self) -> int:
        """``threadId`` inside the task's pid namespace."""
        value: int = self.fields.get("threadId", 0)
        return value

    @property
    def host_thread_id(self) -> int:
        """``hostThreadId``: the thread id as the host sees it."""
        value: int = self.fields.get("hostThreadId", 0)
        return value

    @property
    def parent_process_id(self) -> int:
        """``parentProcessId`` inside the task's pid namespace."""
        value: int = self.fields.get("parentProcessId", 0)
        return value

    @property
    def host_process_id(self) -> int:
        """``hostProcessId``: the pid as the host sees it."""
        value: int = self.fields.get("hostProcessId", 0)
        return value

    @property
    def user_id(self) -> int:
        """``userId``."""
        value: int = self.fields.get("userId", 0)
        return value

    @property
    def host_name(self) -> str:
        """``hostName`` (UTS name)."""
        value: str = self.fields.get("hostName", "")
        return value

    @property
    def return_value(self) -> int:
        """``returnValue``."""
        value: int = self.fields.get("returnValue", 0)
        return value

    @property
    def syscall(self) -> str:
        """``syscall``: the syscall that led to this event (v0.11+; empty before)."""
        value: str = self.fields.get("syscall", "")
        return value

    @property
    def executable_path(self) -> str:
        """``executable.path`` (v0.18+; empty before)."""
        executable = self.fields.get("executable")
        return executable.get("path", "") if isinstance(executable, dict) else ""

    @property
    def container_id(self) -> str:
        """The container id from ``container.id`` (v0.13+) or the flat ``containerId``."""
        return container_id_of(self.fields)

    @property
    def container_started(self) -> bool:
        """``contextFlags.containerStarted``: the event comes from a running container."""
        flags = self.fields.get("contextFlags")
        return bool(flags.get("containerStarted")) if isinstance(flags, dict) else False

    @property
    def origin(self) -> str:
        """Where the event happened: ``"container"``, ``"container-init"`` or ``"host"``.

        Derived as Tracee does: a started container, else a container id
        without a started container (the container is being set up), else the host.
        """
        return origin_of(self.fields)

    def _container_field(self, key: str, flat_key: str) -> str:
        container = self.fields.get("container")
        if isinstance(container, dict) and isinstance(container.get(key), str):
            return str(container[key])
        value = self.fields.get(flat_key)
        return value if isinstance(value, str) else ""

    def _pod_field(self, key: str) -> str:
        kubernetes = self.fields.get("kubernetes")
        if isinstance(kubernetes, dict) and isinstance(kubernetes.get(key), str):
            return str(kubernetes[key])
        value = self.fields.get(key)
        return value if isinstance(value, str) else ""

    @property
    def container_name(self) -> str:
        """The container's name from its runtime (``container.name`` or ``containerName``)."""
        return self._container_field("name", "containerName")

    @property
    def container_image(self) -> str:
        """The container's image (``container.image`` or ``containerImage``), e.g. ``"nginx:1.27"``."""
        return self._container_field("image", "containerImage")

    @property
    def container_image_digest(self) -> str:
        """The image's digest (``container.imageDigest``): a repo digest, else the image id."""
        return self._container_field("imageDigest", "containerImageDigest")

    @property
    def pod_name(self) -> str:
        """The Kubernetes pod (``kubernetes.podName`` or ``podName``)."""
        return self._pod_field("podName")

    @property
    def pod_namespace(self) -> str:
        """The pod's namespace (``kubernetes.podNamespace`` or ``podNamespace``)."""
        return self._pod_field("podNamespace")

    @property
    def pod_uid(self) -> str:
        """The pod's uid (``kubernetes.podUID`` or ``podUID``)."""
        return self._pod_field("podUID")

    @property
    def context_fields(self) -> Mapping[str, Any]:
        """The event's JSON object as the engine's own bookkeeping reads it (routing, syscall
        pairing, the process tree's check for a known process): :attr:`fields`; a
        :class:`LazyEvent` not decoded yet answers with the keys in :data:`LAZY_FIELDS` only."""
        return self.fields

    # --- the process tree ---------------------------------------------------------

    @property
    def process(self) -> ProcessInfo:
        """The event's process in the run's process tree, with its ``parent`` and ``ancestors()``.

        Without a tree (an event built in memory, ``--proctree none``) it is built from the
        event's own context, with no parent.
        """
        context = self.context
        if context is not None:
            found = context.process_of(self)
            if found is not None:
                return found
        from .context.proctree import ProcessInfo

        info = ProcessInfo(self.host_process_id, self.fields.get("threadStartTime", 0) or 0)
        info.comm, info.executable, info.ns_pid = self.process_name, self.executable_path, self.process_id
        return info

    @property
    def parent(self) -> ProcessInfo | None:
        """The parent of the event's process (None when unknown)."""
        return self.process.parent

    def ancestors(self, depth: int = 64) -> list[ProcessInfo]:
        """The event's process's parent, grandparent, ... (nearest first, at most ``depth``)."""
        return self.process.ancestors(depth)

    @property
    def executable_sha256(self) -> str:
        """The sha256 of the process's executable: ``executable.sha256`` on the event, the
        ``sha256`` argument of an exec event, or the tree's (live: a file not hashed before is
        waited for, at most ``finding_wait``, 0.5 s); ``""`` when unknown."""
        executable = self.fields.get("executable")
        if isinstance(executable, dict) and isinstance(executable.get("sha256"), str) and executable["sha256"]:
            return str(executable["sha256"])
        value = self._arg_values().get("sha256") if self._args or self.raw.get("args") else None
        if isinstance(value, str) and value:
            return value
        context = self.context
        wait = context.settings.finding_wait if context is not None and context.hasher is not None else 0.0
        return self.process.wait_sha256(wait) or ""

    @property
    def location(self) -> str:
        """``file:line`` the event was read from, or ``""`` for events built in memory."""
        return f"{self._where}:{self._line}" if self._where else ""

    # --- arguments ---------------------------------------------------------------

    @property
    def args(self) -> Mapping[str, Any]:
        """All arguments as ``{name: value}`` in event order."""
        return self._arg_values()

    def _arg_values(self) -> dict[str, Any]:
        values = self._args
        if values is None:
            args = self.raw.get("args")
            if args is None:
                values = {}
            elif type(args) is not list:
                raise MalformedEventError(f"'args' must be a list, not {type(args).__name__}")
            elif args_of is None or (values := args_of(args)) is None:  # the compiled reading, where built
                try:
                    values = {arg["name"]: arg.get("value") for arg in args}
                except (TypeError, KeyError, AttributeError):
                    raise MalformedEventError(_describe_bad_args(args)) from None
            self._args = values
        return values

    def has_arg(self, name: str) -> bool:
        """True when the event carries an argument called ``name``."""
        return name in self._arg_values()

    def arg(self, name: str, default: Any = _MISSING) -> Any:
        """The value of argument ``name`` as it appears in the JSON.

        :raises ArgumentError: when it is missing and no ``default`` is given.
        """
        values = self._arg_values()
        if name in values:
            return values[name]
        if default is _MISSING:
            raise ArgumentError(f"{self.name} event has no argument {name!r}")
        return default

    def str_arg(self, name: str, default: Any = _MISSING) -> str:
        """Argument ``name`` as a string (``null`` reads as ``""``)."""
        value = self.arg(name, default)
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        raise ArgumentError(f"{self.name} argument {name!r} is not a string: {value!r}")

    def int_arg(self, name: str, default: Any = _MISSING) -> int:
        """Argument ``name`` as an int; numeric strings are accepted."""
        value = self.arg(name, default)
        if type(value) is int:
            return value
        if isinstance(value, str) and value.isascii():
            try:
                return int(value)
            except ValueError:
                pass
        raise ArgumentError(f"{self.name} argument {name!r} is not an integer: {value!r}")

    def str_list_arg(self, name: str, default: Any = _MISSING) -> list[str]:
        """Argument ``name`` as a list of strings (argv, envp; ``null`` reads as ``[]``)."""
        value = self.arg(name, default)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise ArgumentError(f"{self.name} argument {name!r} is not a list of strings: {value!r}")

    def bytes_arg(self, name: str, default: Any = _MISSING) -> bytes:
        """Argument ``name`` as bytes (base64 in Tracee's JSON)."""
        return self.parsed_arg(name, parsers.decode_bytes, default)

    def sockaddr_arg(self, name: str = "remote_addr") -> SockAddr:
        """Argument ``name`` as a :class:`~pytracee.engine.parsers.SockAddr`."""
        return self.parsed_arg(name, SockAddr.from_value)

    def open_flags(self, name: str = "flags") -> int:
        """The open(2) flags in argument ``name``, from a raw int or ``"O_WRONLY|O_CREAT"``."""
        return self.parsed_arg(name, parsers.open_flags)

    def is_file_write(self, name: str = "flags") -> bool:
        """True when the open flags in ``name`` open the file for writing."""
        return parsers.is_file_write(self.open_flags(name))

    def is_file_read(self, name: str = "flags") -> bool:
        """True when the open flags in ``name`` open the file for reading."""
        return parsers.is_file_read(self.open_flags(name))

    def parsed_arg(self, name: str, parse: Callable[[Any], T], default: Any = _MISSING) -> T:
        """Argument ``name`` passed through a parser from :mod:`~pytracee.engine.parsers`.

        ``event.parsed_arg("request", ptrace_request)`` reads ``0`` and
        ``"PTRACE_TRACEME"`` alike; a value the parser rejects raises
        :class:`ArgumentError` naming the event and argument.
        """
        value = self.arg(name, default)
        try:
            return parse(value)
        except ArgumentValueError as exc:
            raise ArgumentError(f"{self.name} argument {name!r}: {exc}") from None

    # --- serialization -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The complete ``trace.Event`` JSON object (zero values filled in, in Go's key order)."""
        return full_event(self.raw)

    def __repr__(self) -> str:
        where = f" at {self.location}" if self._where else ""
        return f"<Event {self.fields.get('eventName')!r} pid={self.fields.get('processId')}{where}>"


#: The top-level fields a :class:`LazyEvent` holds before it is decoded: what routing, the
#: syscall pairing and the process tree's check for a known process read
#: (:attr:`Event.context_fields`).
LAZY_FIELDS: Final = (
    "eventName",
    "timestamp",
    "hostProcessId",
    "hostThreadId",
    "processEntityId",
    "returnValue",
    "syscall",
)


class LazyEvent(Event):
    """An event decoded only when something reads more than its context fields.

    A replay makes these for the events that no signature selects but an engine observer
    pairs or counts (the syscall events behind LSM events): most are never read again. The
    record was proved well-formed when read (:mod:`~pytracee.engine.recscan`), and
    ``fields`` holds its members named in :data:`LAZY_FIELDS`, read in place; ``raw``
    decodes ``text`` on first use, so the event is the same :class:`Event` to every reader.
    The arguments named in ``args_read`` (those the observers declared they read) were read
    in place too, into ``fields["args"]`` as ``{name: value}`` of those present:
    :meth:`arg` and the typed getters answer for them without decoding.
    """

    __slots__ = ("_args_read", "_decoded", "_fields", "_read_args")

    def __init__(
        self,
        fields: dict[str, Any],
        text: bytes,
        source: str = "tracee",
        where: str = "",
        line: int = 0,
        args_read: tuple[str, ...] = (),
    ) -> None:
        self._fields = fields
        self._args_read = args_read
        self._read_args: dict[str, Any] | None = fields.pop("args", None) if args_read else None
        self._decoded: dict[str, Any] | None = None
        self.source = source
        self.text = text
        self._args = None
        self._name = None
        self._args_at = self._args_end = 0
        self._where = where
        self._line = line
        self.context = None
        self.syscall_event = None

    @property
    def raw(self) -> dict[str, Any]:
        decoded = self._decoded
        if decoded is None:
            try:
                decoded = self._decoded = orjson.loads(self.text)  # type: ignore[arg-type]
            except orjson.JSONDecodeError as exc:  # never: the scanner proved it well-formed
                raise MalformedEventError(f"the record cannot be decoded: {exc}") from None
        return decoded

    @raw.setter
    def raw(self, value: dict[str, Any]) -> None:
        self._decoded = value

    @property
    def fields(self) -> dict[str, Any]:
        return self.raw

    @property
    def context_fields(self) -> Mapping[str, Any]:
        return self._fields if self._decoded is None else self._decoded

    @property
    def name(self) -> str:
        value: str = self._fields["eventName"]
        return value

    @property
    def timestamp(self) -> int:
        value: int = self._fields.get("timestamp", 0)
        return value

    @property
    def host_process_id(self) -> int:
        value: int = self._fields.get("hostProcessId", 0)
        return value

    @property
    def host_thread_id(self) -> int:
        value: int = self._fields.get("hostThreadId", 0)
        return value

    @property
    def return_value(self) -> int:
        value: int = self._fields.get("returnValue", 0)
        return value

    @property
    def syscall(self) -> str:
        value: str = self._fields.get("syscall", "")
        return value

    def arg(self, name: str, default: Any = _MISSING) -> Any:
        read = self._read_args
        if read is None or name not in self._args_read:
            return super().arg(name, default)
        if name in read:
            return read[name]
        if default is _MISSING:
            raise ArgumentError(f"{self.name} event has no argument {name!r}")
        return default


def _describe_bad_args(args: list[Any]) -> str:
    for index, arg in enumerate(args):
        if not isinstance(arg, dict):
            return f"args[{index}] must be an object, not {type(arg).__name__}"
        if not isinstance(arg.get("name"), str):
            return f"args[{index}] has no string 'name'"
    return "args could not be read"
