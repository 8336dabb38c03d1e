"""A record's envelope: its name and context fields, checked without decoding the event.

Decoding a whole event (``orjson.loads``) costs most of a replay, yet many records
are events nobody reads: on a node's default Tracee recording, most are events no
signature selects. :func:`read_envelope` takes the cheap first look (``msgspec``
decoding into a struct of the context fields, skipping and syntax-checking the
rest) that tells

* whether the record is a well-formed event, as the reader's full validation
  would find: JSON syntax, a non-empty ``eventName``, every context field of the
  right type, ``args`` a list, the objects objects, a numeric ``eventId``;
* its name, process and container, without building the event.

It answers ``None`` whenever the look is not conclusive (anything odd: nulls,
non-ASCII text, deep nesting, a type the full validation might accept): the
caller then decodes and validates the record in full, which gives its exact
reason and line. So a record is never skipped unseen: one that no consumer wants
is skipped only once its envelope has proved it a valid event, and is counted
as read.

Not checked for a record nobody decodes (the full decoding would reject it): a
number beyond the range of a double (``1e999``) in a field nobody reads, and
nesting deeper than :data:`MAX_NESTING` (which only protects what decodes it).

The reader asks the compiled scanner (:mod:`.recscan`) first, which gives the same
answers in one pass; this module is the path of the records it is not sure about,
and of every record where it was not built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Annotated, Any, Final

import msgspec

__all__ = ["MAX_NESTING", "Envelope", "guess_event_name", "may_nest_too_deeply", "read_envelope", "read_process_key"]

#: Deepest nesting of arrays and objects accepted in a record (Tracee's events nest 4 deep).
MAX_NESTING: Final = 32


class _Container(msgspec.Struct, frozen=True, gc=False):
    id: str = ""


class _Flags(msgspec.Struct, frozen=True, gc=False):
    containerStarted: bool = False  # noqa: N815 - Tracee's JSON key


#: An integer the full decoder surely reads as one (beyond 64 bits it reads a float).
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Object(msgspec.Struct, frozen=True, gc=False):
    """Any JSON object (its keys are not looked at)."""


_NO_CONTAINER: Final = _Container()
_NO_FLAGS: Final = _Flags()
_NO_OBJECT: Final = _Object()
_ABSENT: Final = msgspec.Raw()


class Envelope(msgspec.Struct, gc=False):
    """The context fields of one record (``trace.Event`` JSON keys); ``args`` undecoded."""

    eventName: str = ""  # noqa: N815 - the JSON keys, as Tracee writes them
    eventId: str | _Int = 0  # noqa: N815
    timestamp: _Int = 0
    processId: _Int = 0  # noqa: N815
    threadId: _Int = 0  # noqa: N815
    parentProcessId: _Int = 0  # noqa: N815
    hostProcessId: _Int = 0  # noqa: N815
    userId: _Int = 0  # noqa: N815
    returnValue: _Int = 0  # noqa: N815
    processName: str = ""  # noqa: N815
    hostName: str = ""  # noqa: N815
    containerId: str = ""  # noqa: N815
    contextFlags: _Flags = _NO_FLAGS  # noqa: N815
    container: _Container = _NO_CONTAINER
    kubernetes: _Object = _NO_OBJECT
    executable: _Object = _NO_OBJECT
    args: msgspec.Raw = _ABSENT

    @property
    def container_id(self) -> str:
        """``container.id`` (v0.13+) or the flat ``containerId``, as :func:`~.events.container_id_of`."""
        return self.container.id or self.containerId

    @property
    def origin(self) -> str:
        """``"container"``, ``"container-init"`` or ``"host"``, as :func:`~.events.origin_of`."""
        if self.contextFlags.containerStarted:
            return "container"
        return "container-init" if self.container.id or self.containerId else "host"

    def arg_values(self, names: Collection[str] | None = None) -> dict[str, Any] | None:
        """The arguments as ``{name: value}`` (as :attr:`.events.Event.args`), or only those
        called ``names``; ``None`` when they are not a list of ``{"name": str, ...}``
        objects (the full decoding says why)."""
        args = self.args
        if not args:
            return {}
        try:
            if names is None:
                return {arg.name: arg.value for arg in _decode_args(args)}
            found = _find_string_args(bytes(args), names)
            if found is not None:
                return found
            wanted = {arg.name: arg.value for arg in _decode_raw_args(args) if arg.name in names}
            return {name: _decode_value(value) if value else None for name, value in wanted.items()}
        except (_DecodeError, RecursionError):
            return None


class _Arg(msgspec.Struct, gc=False):
    name: str
    value: Any = None


class _Key(msgspec.Struct, gc=False):
    hostProcessId: _Int = 0  # noqa: N815 - the JSON keys, as Tracee writes them
    containerId: str = ""  # noqa: N815
    container: _Container = _NO_CONTAINER


_decode: Final = msgspec.json.Decoder(Envelope).decode
_decode_key: Final = msgspec.json.Decoder(_Key).decode
_decode_args: Final = msgspec.json.Decoder(list[_Arg]).decode


class _RawArg(msgspec.Struct, gc=False):
    name: str
    value: msgspec.Raw = _ABSENT


_decode_raw_args: Final = msgspec.json.Decoder(list[_RawArg]).decode
_decode_value: Final = msgspec.json.Decoder().decode
_DecodeError: Final = msgspec.DecodeError


def read_envelope(text: bytes) -> Envelope | None:
    """The envelope of a record that is certainly a well-formed event, else ``None``.

    ``None`` means "decode it in full to find out", never "bad".
    """
    if not text.isascii():  # the full decoder checks UTF-8 and surrogates
        return None
    try:
        head = _decode(text)
    except (_DecodeError, RecursionError):  # RecursionError: nested thousands deep
        return None
    if not head.eventName:
        return None
    event_id = head.eventId
    if type(event_id) is str and not (event_id.isascii() and event_id.isdigit()):  # not "\u00b2"
        return None
    if head.args and bytes(head.args)[:1] != b"[":  # null, or not a list
        return None
    return head


def may_nest_too_deeply(text: bytes) -> bool:
    """True when ``text`` has more than :data:`MAX_NESTING` brackets and braces: it
    may nest too deeply (the full check then measures). Tested only on records that
    are decoded: a record nobody decodes cannot be too deep for anyone."""
    return text.count(b"[") + text.count(b"{") > MAX_NESTING


def read_process_key(text: bytes) -> tuple[str, int] | None:
    """``(container id, host process id)`` of a record, as its envelope would give them
    (cheaper: only these fields are decoded); ``None`` when they cannot be read so."""
    try:
        key = _decode_key(text)
    except (_DecodeError, RecursionError):
        return None
    return key.container.id or key.containerId, key.hostProcessId


_ARG_PATTERNS: dict[str, tuple[bytes, re.Pattern[bytes]]] = {}


def _find_string_args(args: bytes, names: Collection[str]) -> dict[str, Any] | None:
    """String arguments ``names`` read from the (valid) JSON text of ``args`` by a search
    for ``{"name":"N","type":"T","value":"..."}`` as Tracee writes them (the value last); ``None`` (decode
    them instead) unless the text has no escapes and each of ``names`` occurs exactly once
    as a JSON string, in an argument written so, with a string value."""
    if b"\\" in args:
        return None  # escapes: decode
    found: dict[str, Any] = {}
    for name in names:
        entry = _ARG_PATTERNS.get(name)
        if entry is None:
            token = json.dumps(name).encode()
            # the value closes the object: a key after it (another "value") is read by decoding
            pattern = re.compile(rb'"name":' + re.escape(token) + rb',"type":"[^"]*","value":"([^"]*)"\}')
            entry = _ARG_PATTERNS[name] = (token, pattern)
        token, pattern = entry
        # the only "N" string in the text (no escapes: any argument called N holds it) ...
        if args.count(token) != 1:
            return None  # absent, or also elsewhere: decode
        match = pattern.search(args)  # ... in an argument written as Tracee writes them
        if match is None:
            return None
        found[name] = match.group(1).decode("ascii")
    return found


_NAME_KEY: Final = b'"eventName":"'
_NAME_KEY_LENGTH: Final = len(_NAME_KEY)
#: The names guessed so far, by their bytes (at most ``_MAX_GUESSED``: Tracee has about 500 events).
_GUESSED: dict[bytes, str] = {}
_MAX_GUESSED: Final = 2048


def guess_event_name(text: bytes) -> str:
    """The event name a record most likely has: the value of the first ``"eventName":"``
    (Tracee's layout), found by a byte search; ``""`` when there is none.

    Only a guess (a nested object could hold such a key first): a record whose guessed
    name some consumer wants is decoded and validated in full, which reads the real name.
    """
    at = text.find(_NAME_KEY)
    if at < 0:
        return ""
    start = at + _NAME_KEY_LENGTH
    raw = text[start : text.find(b'"', start)]
    name = _GUESSED.get(raw)
    if name is None:  # decoding (with its error handler) costs more than the lookup
        name = raw.decode("ascii", "replace")
        if len(_GUESSED) < _MAX_GUESSED:  # names an attacker makes up are decoded each time
            _GUESSED[raw] = name
    return name
