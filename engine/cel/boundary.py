"""What an event must be before it reaches a CEL engine.

cel-cpp converts the whole event into its own values when an expression
first reads ``event``, and the result of every ``getEventData`` call when it
is made. It crashes the process on values nested some 10,000 levels deep (a
C++ stack overflow, also for a list that contains itself), turns lone UTF-16
surrogates and integers beyond 64 bits into opaque errors, and its cost grows
with the size of the event. So an event is admitted to CEL (:func:`admit`)
only when it is JSON-shaped and bounded:

* strings (no lone surrogates), bytes, integers within the signed or
  unsigned 64-bit range, floats (NaN and infinities are CEL doubles),
  ``True``/``False``/``None``, lists and dicts with string keys;
* at most :data:`~.limits.MAX_EVENT_DEPTH` levels of lists and maps,
  :data:`~.limits.MAX_EVENT_VALUES` values (scalars, containers and keys) and
  :data:`~.limits.MAX_EVENT_SIZE` characters of strings and bytes: the bounds
  the load-time cost analysis (:mod:`.cost`) assumes.

A lone surrogate becomes U+FFFD, an integer beyond 64 bits a double, a tuple
a list (what Go's JSON decoder, and so Tracee, would see); the event is then
evaluated on a converted copy. Anything else raises :class:`EventRejected`:
the signatures it reaches count it as an evaluation error (no match).

Events the reader decoded from a JSON line of at most :data:`FAST_TEXT_SIZE`
bytes with few brackets are admitted as they are, without a walk: the JSON
decoder already refused surrogates, NaN and out-of-range numbers, and such a
line cannot exceed the bounds. :class:`EventGate` remembers the last event,
so all the CEL signatures an event reaches share one admission, and one
projection of it to the fields their expressions read (:mod:`.projection`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ..events import Event
from .backends import CelEvalError
from .limits import MAX_EVENT_DEPTH, MAX_EVENT_SIZE, MAX_EVENT_VALUES
from .projection import WHOLE_EVENT, project

__all__ = ["FAST_TEXT_SIZE", "EventGate", "EventRejected", "admit", "admit_event"]

#: JSON lines up to this size hold at most MAX_EVENT_VALUES values (each takes two bytes or more).
FAST_TEXT_SIZE: Final = min(MAX_EVENT_SIZE, 2 * MAX_EVENT_VALUES)

_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_SAME: Final = object()  # "unchanged" from the walk


class EventRejected(CelEvalError):
    """The event cannot be given to CEL; the message says where in the event and why."""


class _Walk:
    """One event's walk: the values and characters seen so far."""

    __slots__ = ("nul", "size", "values")

    def __init__(self) -> None:
        self.size = 0
        self.values = 0
        #: A string or key seen holds a NUL character.
        self.nul = False

    def value(self, value: Any, depth: int, path: str) -> Any:
        """``_SAME`` when ``value`` can go to CEL as it is, a converted value, or raises :class:`EventRejected`."""
        self.values += 1
        if self.values > MAX_EVENT_VALUES:
            raise EventRejected(f"the event has more than {MAX_EVENT_VALUES:,} values (limit of CEL evaluation)")
        kind = type(value)
        if kind is str:
            return self.string(value, path)
        if value is None or kind is bool or kind is float:
            return _SAME
        if kind is int:
            if _INT_MIN <= value <= _UINT_MAX:
                return _SAME
            try:
                return float(value)
            except OverflowError:
                raise EventRejected(f"{_short(path)}: an integer too large even for a double") from None
        if kind is dict:
            return self.mapping(value, depth, path)
        if kind is list or kind is tuple:
            return self.sequence(value, depth, path)
        if kind is bytes or kind is bytearray:
            self.grow(len(value))
            return _SAME
        if isinstance(value, (int, str, float)):  # a subclass (an enum ...): its plain value
            plain = int(value) if isinstance(value, int) else "" + value if isinstance(value, str) else float(value)
            self.values -= 1
            converted = self.value(plain, depth, path)
            return plain if converted is _SAME else converted
        raise EventRejected(f"{_short(path)}: a value of type {kind.__name__} has no JSON form")

    def grow(self, characters: int) -> None:
        self.size += characters
        if self.size > MAX_EVENT_SIZE:
            raise EventRejected(f"the event is larger than {MAX_EVENT_SIZE:,} characters (limit of CEL evaluation)")

    def string(self, text: str, path: str) -> Any:
        self.grow(len(text))
        if "\x00" in text:
            self.nul = True
        if text.isascii():
            return _SAME
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # surrogate pairs combine into their character, lone surrogates become U+FFFD
            paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
            return _SURROGATES.sub("\ufffd", paired)
        return _SAME

    def mapping(self, value: dict[Any, Any], depth: int, path: str) -> Any:
        if depth >= MAX_EVENT_DEPTH:
            raise EventRejected(f"{_short(path)}: nested more than {MAX_EVENT_DEPTH} levels deep")
        changed: dict[str, Any] | None = None
        for index, (key, item) in enumerate(value.items()):
            if type(key) is not str:
                raise EventRejected(f"{_short(path)}: a map key of type {type(key).__name__} (JSON keys are strings)")
            new_key = self.string(key, path)
            self.values += 1
            new_item = self.value(item, depth + 1, f"{path}.{key}" if path else key)
            if changed is None and (new_key is not _SAME or new_item is not _SAME):
                changed = dict(list(value.items())[:index])
            if changed is not None:
                changed[key if new_key is _SAME else new_key] = item if new_item is _SAME else new_item
        return _SAME if changed is None else changed

    def sequence(self, value: list[Any] | tuple[Any, ...], depth: int, path: str) -> Any:
        if depth >= MAX_EVENT_DEPTH:
            raise EventRejected(f"{_short(path)}: nested more than {MAX_EVENT_DEPTH} levels deep")
        changed: list[Any] | None = list(value) if type(value) is tuple else None
        for index, item in enumerate(value):
            new_item = self.value(item, depth + 1, f"{path}[{index}]")
            if new_item is not _SAME:
                if changed is None:
                    changed = list(value)
                changed[index] = new_item
        return _SAME if changed is None else changed


def _short(path: str) -> str:
    """A path in an event for a message: ``args[0].value``, shortened when very long."""
    if not path:
        return "event"
    return path if len(path) <= 80 else f"{path[:40]}...{path[-36:]}"


def admit(raw: Mapping[str, Any], text: bytes | None = None) -> dict[str, Any]:
    """``raw`` itself when CEL can take it as it is, else a converted copy.

    :param text: the JSON line ``raw`` was decoded from, if any (a fast path).
    :raises EventRejected: for an event beyond the bounds or with values JSON has no form for.
    """
    return admit_event(raw, text)[0]


def admit_event(raw: Mapping[str, Any], text: bytes | None = None) -> tuple[dict[str, Any], bool]:
    """:func:`admit`, and whether the event may hold a NUL character in a string or key.

    cel-expr-python cuts a string at its first NUL when it converts it to CEL (``"a\\x00b"``
    becomes ``"a"``, two keys may become one: "duplicate key in map"), so such an event is
    evaluated by the engine alone, on all its fields (:class:`EventGate`).
    """
    if (
        text is not None
        and type(raw) is dict
        and len(text) <= FAST_TEXT_SIZE
        and text.count(b"[") + text.count(b"{") <= MAX_EVENT_DEPTH
    ):
        # JSON writes NUL as \u0000 (this also finds an escaped backslash before "u0000": no harm)
        return raw, b"\\" in text and b"\\u0000" in text
    if type(raw) is not dict:
        raise EventRejected(f"the event is a {type(raw).__name__}, not a JSON object")
    walk = _Walk()
    converted = walk.mapping(raw, 0, "")
    return (raw if converted is _SAME else converted), walk.nul


def _arguments(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of a converted event's ``args`` (already checked by :attr:`Event.args`)."""
    args = raw.get("args")
    return {arg["name"]: arg.get("value") for arg in args} if isinstance(args, list) else {}


class EventGate:
    """Admits events for one backend, remembering the last one: ``admit(event) -> (raw, args)``.

    It also gives the admitted event as the backend's engine sees it (:meth:`view`): only
    the fields the expressions of its signatures read (:meth:`require`, :mod:`.projection`),
    and says whether conditions may be decided in Python (:attr:`decidable`, :mod:`.shortcut`):
    not for an event that may hold a NUL character (see :func:`admit_event`), which the
    engine evaluates whole.
    """

    __slots__ = ("_args", "_error", "_event", "_fields", "_raw", "_view", "decidable")

    def __init__(self) -> None:
        self._event: Event | None = None
        self._raw: dict[str, Any] = {}
        self._args: Mapping[str, Any] = {}
        self._error: EventRejected | None = None
        self._fields: frozenset[str] | None = frozenset()
        self._view: dict[str, Any] | None = None
        #: Conditions on the last admitted event may be decided in Python.
        self.decidable = True

    def require(self, fields: frozenset[str] | None) -> None:
        """Let :meth:`view` include ``fields`` too (:data:`~.projection.WHOLE_EVENT`: every field)."""
        current = self._fields
        if current is not WHOLE_EVENT:
            self._fields = WHOLE_EVENT if fields is WHOLE_EVENT else current | fields
        self._view = None

    def admit(self, event: Event, args: Mapping[str, Any]) -> tuple[dict[str, Any], Mapping[str, Any]]:
        """The event's JSON object and arguments as CEL may see them (``args`` is ``event.args``).

        :raises EventRejected: when the event cannot be given to CEL.
        """
        if event is not self._event:
            self._event = event
            self._error = None
            self._view = None
            try:
                raw, nul = admit_event(event.raw, event.text)
            except EventRejected as exc:
                self._error = exc
            else:
                self.decidable = not nul
                self._raw = raw
                self._args = args if raw is event.raw else _arguments(raw)
        if self._error is not None:
            raise self._error
        return self._raw, self._args

    def view(self) -> dict[str, Any]:
        """The last admitted event with only the fields any required expression reads (all, if not decidable)."""
        view = self._view
        if view is None:
            fields = self._fields
            whole = fields is WHOLE_EVENT or not self.decidable
            view = self._view = self._raw if whole or fields is None else project(self._raw, fields)
        return view
