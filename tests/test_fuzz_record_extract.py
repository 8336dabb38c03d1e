"""The compiled record scanner's ``extract`` (engine/_recscan.c) against the full decoding.

``extract(text, keys, arg_names)`` reads the named top-level members and arguments of a
record in place. Property, for any bytes: the answer is ``None`` whenever ``scan`` is not
sure of the record; otherwise it is either exactly what ``orjson.loads`` and
:attr:`Event.args <pytracee.engine.events.Event.args>` find (members of ``keys`` present in
the record, the last of a duplicated key winning; arguments of ``arg_names``, the last of a
name winning, a missing value read as ``None``), or ``None`` where the record holds a value
it would have to read that is not a plain string (no escapes), an integer within int64,
true, false or null (a member may also be an object of those, an argument a list of plain
strings). Which values those are is found here by a tokenizer of its own, not by the C code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytracee.engine import _recscan
from pytracee.engine.events import Event, MalformedEventError
from record_strategies import PLAIN, dump, events, mutated, signature_test_events, tracee_recordings

#: Top-level keys asked for: Tracee's context fields, keys no record has, odd ones.
KEYS = [
    "eventName",
    "eventId",
    "timestamp",
    "hostProcessId",
    "hostThreadId",
    "threadStartTime",
    "processName",
    "hostName",
    "containerId",
    "container",
    "contextFlags",
    "executable",
    "kubernetes",
    "returnValue",
    "syscall",
    "matchedPolicies",
    "stackAddresses",
    "args",
    "name",
    "value",
    "absent",
    "caf\u00e9",
    "\ud800",
    "",
]
#: Argument names asked for.
ARG_NAMES = ["pathname", "argv", "envp", "flags", "a", "b", "c", "d", "absent", "caf\u00e9", "\udfff", ""]
KEY_TUPLES = st.lists(st.sampled_from(KEYS), max_size=8).map(tuple)
ARG_NAME_TUPLES = st.lists(st.sampled_from(ARG_NAMES), max_size=5).map(tuple)


# --- the oracle ---------------------------------------------------------------------------------


def typed(value: Any) -> Any:
    """``value`` with every scalar's type next to it (``True`` is not ``1``, a list not a tuple)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(item) for item in value])
    return (type(value).__name__, value)


@dataclass(frozen=True)
class _Node:
    """A JSON value as written: a scalar's text, an array's items, an object's (key text, value) members."""

    kind: str  # "string", "number", "literal", "array" or "object"
    text: bytes = b""
    items: tuple[Any, ...] = ()


_TOKEN = re.compile(
    rb'[ \t\r\n]*(?:("(?:[^"\\]|\\.)*")|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|(true|false|null)|([][{}:,]))',
    re.DOTALL,
)


def _tokens(text: bytes) -> list[bytes]:
    tokens, pos = [], 0
    while match := _TOKEN.match(text, pos):
        tokens.append(match.group(match.lastindex or 0))
        pos = match.end()
    assert not text[pos:].strip(b" \t\r\n"), f"not JSON at byte {pos}: {text!r}"
    return tokens


def _parse(tokens: list[bytes], at: int) -> tuple[_Node, int]:
    token = tokens[at]
    if token in (b"{", b"["):
        close = b"}" if token == b"{" else b"]"
        items: list[Any] = []
        at += 1
        while tokens[at] != close:
            if token == b"{":
                assert tokens[at + 1] == b":"
                value, after = _parse(tokens, at + 2)
                items.append((tokens[at], value))
            else:
                value, after = _parse(tokens, at)
                items.append(value)
            at = after + (tokens[after] == b",")
        return _Node("object" if token == b"{" else "array", items=tuple(items)), at + 1
    kind = "string" if token[:1] == b'"' else "literal" if token[:1].isalpha() else "number"
    return _Node(kind, text=token), at + 1


def parse(text: bytes) -> _Node:
    """The JSON ``text`` as written (duplicate keys kept, escapes visible)."""
    tokens = _tokens(text)
    node, end = _parse(tokens, 0)
    assert end == len(tokens)
    return node


def _plain_string(node: _Node) -> bool:
    return node.kind == "string" and b"\\" not in node.text and node.text.isascii()


def _scalar(node: _Node) -> bool:
    """A plain string, an integer within int64 (written as one), true, false or null."""
    if node.kind == "number":
        return re.fullmatch(rb"-?[0-9]+", node.text) is not None and -(2**63) <= int(node.text) < 2**63
    return node.kind == "literal" or _plain_string(node)


def _readable_field(node: _Node) -> bool:
    return _scalar(node) or (
        node.kind == "object" and all(_plain_string(_Node("string", key)) and _scalar(v) for key, v in node.items)
    )


def _readable_arg(node: _Node) -> bool:
    return _scalar(node) or (node.kind == "array" and all(map(_plain_string, node.items)))


def unreadable(text: bytes, keys: Sequence[str], arg_names: Sequence[str]) -> str | None:
    """Why ``extract`` may be unsure of this (valid) record, or None: it must answer.

    A member of ``keys`` or an argument of ``arg_names`` that is not a readable value (any
    occurrence of a duplicated key or argument: extract may stop at the first it cannot
    read); with ``arg_names``, an argument it cannot tell the name of for certain (not an
    object, an escaped key, no name or two, a name that is not a plain string, two values).
    """
    record = parse(text)
    args = None
    for key, value in record.items:
        name = json.loads(key)
        if name in keys and not _readable_field(value):
            return f"member {name!r}"
        if name == "args":
            args = value
    if not arg_names or args is None:
        return None
    for arg in args.items:
        if arg.kind != "object" or any(b"\\" in key for key, _ in arg.items):
            return "an argument not an object, or an escaped key in one"
        names = [value for key, value in arg.items if key == b'"name"']
        values = [value for key, value in arg.items if key == b'"value"']
        if len(names) != 1 or not _plain_string(names[0]) or len(values) > 1:
            return "an argument without one plain name, or with two values"
        if json.loads(names[0].text) in arg_names and values and not _readable_arg(values[0]):
            return f"argument {names[0].text!r}"
    return None


def _extract(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]) -> Any:
    return _recscan.extract(text, keys, arg_names)


def check(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]) -> Any:
    """The property; returns ``extract``'s answer."""
    found = _extract(text, keys, arg_names)
    if _recscan.scan(text, {}) is None:
        assert found is None, f"extract read a record scan is not sure of: {text!r} -> {found!r}"
        return None
    raw = orjson.loads(text)
    fields = {key: raw[key] for key in keys if key in raw}
    try:
        every_arg = Event(raw).args if arg_names else {}
    except MalformedEventError:
        assert found is None, f"extract read arguments the event cannot: {text!r} -> {found!r}"
        return None
    args = {name: value for name, value in every_arg.items() if name in arg_names}
    if found is None:
        why = unreadable(text, keys, arg_names)
        assert why is not None, f"extract was not sure of {text!r}, {keys}, {arg_names}: expected {(fields, args)!r}"
        return None
    assert type(found) is tuple, found
    assert typed(found) == typed((fields, args)), (text, keys, arg_names)
    return found


# --- records with what extract reads: duplicates, flat and nested objects, string lists ----------


class _Writer:
    """JSON text drawn piece by piece, with the separators of one record."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.comma, self.colon = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]))

    def string(self, text: str, rarity: int = 5) -> str:
        """``text`` as a JSON string, one time in ``rarity`` with one character written as an escape."""
        body = [json.dumps(char)[1:-1] for char in text]
        if body and self.draw(st.integers(1, rarity)) == 1:
            at = self.draw(st.integers(0, len(body) - 1))
            body[at] = f"\\u{ord(text[at]):04x}" if self.draw(st.booleans()) else body[at].replace("/", "\\/")
        return '"' + "".join(body) + '"'

    def object(self, members: list[tuple[str, str]]) -> str:
        """An object of (key, value text) members, in the order given (keys may repeat)."""
        return "{" + self.comma.join(f"{self.string(key, 40)}{self.colon}{value}" for key, value in members) + "}"

    def array(self, items: list[str]) -> str:
        return "[" + self.comma.join(items) + "]"

    def scalar(self) -> str:
        """Mostly readable: plain strings, int64 integers, literals; else escapes, huge integers, floats."""
        kind = self.draw(st.integers(0, 9))
        if kind <= 3:
            return self.string(self.draw(PLAIN))
        if kind <= 5:
            return json.dumps(self.draw(st.integers(-(2**63), 2**63 - 1)))
        if kind == 6:
            return json.dumps(self.draw(st.integers(2**63, 2**64 - 1) | st.integers(-(2**64), -(2**63) - 1)))
        if kind == 7:
            return json.dumps(self.draw(st.floats(-1e200, 1e200)))
        return self.draw(st.sampled_from(["true", "false", "null", "-0", "1.0", "1e2", "0.5E-3"]))

    def flat(self) -> str:
        """An object of scalars (a key now and then repeated)."""
        keys = st.sampled_from(["id", "name", "path", "image", "containerStarted", "isCompat"])
        return self.object([(self.draw(keys), self.scalar()) for _ in range(self.draw(st.integers(0, 3)))])

    def strings(self, odd: bool) -> str:
        """A list of strings (escaped now and then); ``odd``: with one item that is not a string."""
        items = [self.string(self.draw(PLAIN)) for _ in range(self.draw(st.integers(0, 3)))]
        if odd:
            odd_item = self.draw(st.sampled_from(["1", "null", "[]", "{}", '"\\n"']))
            items.insert(self.draw(st.integers(0, len(items))), odd_item)
        return self.array(items)

    def value(self) -> str:
        kind = self.draw(st.integers(0, 9))
        if kind <= 4:
            return self.scalar()
        if kind == 5:
            return self.flat()
        if kind == 6:  # an object with a nested object or array among scalars
            nested = self.draw(st.sampled_from(["{}", "[]", self.flat(), self.strings(False)]))
            return self.object(self.draw(st.permutations([("a", self.scalar()), ("b", nested)])))
        return self.strings(odd=kind == 7)

    def argument(self) -> str:
        """An argument like Tracee's; now and then without a name, with two names or two values."""
        name = self.draw(st.sampled_from(ARG_NAMES[:5]))
        members = [("name", self.string(name, 25)), ("type", '"const char*"')]
        if self.draw(st.integers(0, 4)):
            if name in ("argv", "envp"):
                members.append(("value", self.strings(odd=self.draw(st.integers(0, 3)) == 0)))
            else:
                members.append(("value", self.draw(st.sampled_from([self.scalar] * 3 + [self.value]))()))
        odd = self.draw(st.integers(0, 30))
        if odd == 0:
            members.append(("value", self.value()))
        elif odd == 1:
            members = [member for member in members if member[0] != "name"]
        elif odd == 2:
            members.append(("name", self.string(self.draw(st.sampled_from(ARG_NAMES[:5])))))
        return self.object(self.draw(st.permutations(members)))

    def field(self, key: str) -> str:
        """A value of a context field scan reads, of the type it reads (its members: anything)."""
        draw = self.draw
        if key == "eventId":
            return draw(st.sampled_from(['"59"', "59", "-1"]))
        if key in ("timestamp", "hostProcessId", "returnValue"):
            return json.dumps(draw(st.integers(-(2**63), 2**63 - 1)))
        if key == "processName":
            return self.string(draw(PLAIN))
        if key == "containerId":
            return json.dumps(draw(st.sampled_from(["", "abc"])))
        if key == "container":
            members = [("id", json.dumps(draw(st.sampled_from(["", "abc"])))), ("name", self.value())]
            return self.object([*members, ("image", self.scalar())][: draw(st.integers(0, 3))])
        if key == "contextFlags":
            members = [("containerStarted", draw(st.sampled_from(["true", "false"]))), ("isCompat", self.value())]
            return self.object(members[: draw(st.integers(0, 2))])
        if key == "executable":
            return draw(st.sampled_from([self.flat(), self.object([("path", self.value())]), "{}"]))
        if key == "kubernetes":
            return self.object([("podName", self.value())])
        return self.array([self.argument() for _ in range(draw(st.integers(0, 5)))])  # args


#: Context fields scan reads (their values drawn by _Writer.field).
SCANNED = [
    "args",
    "container",
    "containerId",
    "contextFlags",
    "eventId",
    "executable",
    "hostProcessId",
    "kubernetes",
    "processName",
    "returnValue",
    "timestamp",
]
#: Members scan does not read: any value, each perhaps more than once.
OTHERS = ["syscall", "hostThreadId", "threadStartTime", "matchedPolicies", "stackAddresses", "name", "absent"]


@st.composite
def records(draw: Any) -> bytes:
    """A record's text with duplicated keys, flat and nested objects, string lists, escapes, odd numbers."""
    write = _Writer(draw)
    chosen = draw(st.lists(st.sampled_from(SCANNED), unique=True))
    if "args" not in chosen and draw(st.integers(0, 4)):
        chosen.append("args")
    members = [("eventName", json.dumps(draw(st.sampled_from(["execve", "security_file_open", "x"]))))]
    members += [(key, write.field(key)) for key in chosen]
    members += [(draw(st.sampled_from(OTHERS)), write.value()) for _ in range(draw(st.integers(0, 5)))]
    return write.object(draw(st.permutations(members))).encode()


# --- the properties -----------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(records(), KEY_TUPLES, ARG_NAME_TUPLES)
@example(b'{"eventName":"x","syscall":"a","syscall":"b"}', ("syscall",), ())
@example(b'{"eventName":"x","args":[{"name":"argv","value":["a",1]}]}', (), ("argv",))
def test_records_with_what_extract_reads_agree_with_the_full_decoding(
    text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]
) -> None:
    check(text, keys, arg_names)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(odd=False), KEY_TUPLES, ARG_NAME_TUPLES, st.data())
def test_plain_records_agree_with_the_full_decoding(
    raw: dict[str, Any], keys: tuple[str, ...], arg_names: tuple[str, ...], data: st.DataObject
) -> None:
    check(dump(data.draw, raw), keys, arg_names)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(), KEY_TUPLES, ARG_NAME_TUPLES, st.data())
def test_odd_records_agree_with_the_full_decoding(
    raw: dict[str, Any], keys: tuple[str, ...], arg_names: tuple[str, ...], data: st.DataObject
) -> None:
    check(dump(data.draw, raw), keys, arg_names)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), records()), KEY_TUPLES, ARG_NAME_TUPLES)
@example(b'{"eventName":"x","container":{"id":"a","\\u0069d":"b"}}', ("container",), ())
@example(b'{"eventName":"x","args":[{"name":"a","\\u0076alue":"/etc/shadow"}]}', (), ("a",))
@example(b'{"eventName":"x","args":[{"name":"\\u0061","value":"/etc/shadow"}]}', (), ("a",))
@example(b'{"eventName":"x","args":[{"name":"a","value":"/x","value":"/etc/shadow"}]}', (), ("a",))
@example(b'{"eventName":"x","args":[{"name":"a","name":"b","value":"/etc/shadow"}]}', (), ("b",))
@example(b'{"eventName":"x","args":[{"value":1}]}', (), ("a",))
@example(b'{"eventName":"x","args":[7]}', (), ("a",))
def test_mutated_records_are_never_read_otherwise(
    text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]
) -> None:
    check(text, keys, arg_names)


@given(st.binary(max_size=256), KEY_TUPLES, ARG_NAME_TUPLES)
def test_any_bytes_give_an_answer_or_none(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]) -> None:
    check(text, keys, arg_names)


# --- answers, written out -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keys", "arg_names", "answer"),
    [
        # absent keys and arguments are left out; an argument without a value reads None
        (b'{"eventName":"x"}', ("absent", "eventName"), ("a",), ({"eventName": "x"}, {})),
        (b'{"eventName":"x","args":[{"name":"a"}]}', (), ("a", "b"), ({}, {"a": None})),
        # the last of a duplicated key, and of a repeated argument name, wins
        (b'{"eventName":"x","syscall":"a","syscall":"b"}', ("syscall",), (), ({"syscall": "b"}, {})),
        (b'{"eventName":"x","y":[1],"y":"z"}', ("y",), (), ({"y": "z"}, {})),  # only the last is read
        (
            b'{"eventName":"x","args":[{"name":"a","value":"1"},{"name":"b","value":2},{"name":"a","value":true}]}',
            (),
            ("a",),
            ({}, {"a": True}),
        ),
        # objects of scalars are read as dicts (the last of a member wins)
        (
            (
                b'{"eventName":"x","container":{"id":"c1","name":"web","started":true,"pid":-4},'
                b'"executable":{"path":"/bin/sh"},"contextFlags":{"containerStarted":false,"isCompat":null},'
                b'"kubernetes":{}}'
            ),
            ("container", "executable", "contextFlags", "kubernetes"),
            (),
            (
                {
                    "container": {"id": "c1", "name": "web", "started": True, "pid": -4},
                    "executable": {"path": "/bin/sh"},
                    "contextFlags": {"containerStarted": False, "isCompat": None},
                    "kubernetes": {},
                },
                {},
            ),
        ),
        (b'{"eventName":"x","y":{"a":1,"a":"b"}}', ("y",), (), ({"y": {"a": "b"}}, {})),
        # an argument's list of plain strings is read as a list; scalars of every kind
        (
            (
                b'{"eventName":"execve","args":[{"name":"argv","value":["ls","-l",""]},{"name":"envp","value":[]},'
                b'{"name":"flags","value":-9223372036854775808},{"name":"pathname","value":"/bin/ls"}]}'
            ),
            ("eventName",),
            ("argv", "envp", "flags", "pathname"),
            (
                {"eventName": "execve"},
                {"argv": ["ls", "-l", ""], "envp": [], "flags": -(2**63), "pathname": "/bin/ls"},
            ),
        ),
        # values not asked for may be anything; whitespace anywhere
        (
            (
                b' { "eventName" : "x" , "n" : [ {"a": 1.5} ] , "args" : [ { "name" : "b" , "value" : {"c": [1e5]} } ,'
                b' { "value" : 7 , "name" : "a" } ] , "y" : 9223372036854775807 }\r\n'
            ),
            ("y",),
            ("a",),
            ({"y": 2**63 - 1}, {"a": 7}),
        ),
        # the arguments are not read when none is asked for
        (b'{"eventName":"x","args":[{"name":"a","value":["/x",1]}]}', ("eventName",), (), ({"eventName": "x"}, {})),
    ],
)
def test_answers(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...], answer: Any) -> None:
    assert typed(_extract(text, keys, arg_names)) == typed(answer)
    check(text, keys, arg_names)


@pytest.mark.parametrize(
    ("text", "keys", "arg_names"),
    [
        # a member that is not a readable value
        (b'{"eventName":"x","container":{"id":"c","labels":{"a":"b"}}}', ("container",), ()),
        (b'{"eventName":"x","executable":{"path":"/bin/sh","argv":["sh"]}}', ("executable",), ()),
        (b'{"eventName":"x","matchedPolicies":["p"]}', ("matchedPolicies",), ()),
        (b'{"eventName":"x","processName":"\\u0073h"}', ("processName",), ()),
        (b'{"eventName":"x","container":{"name":"\\/x"}}', ("container",), ()),
        (b'{"eventName":"x","container":{"\\u006eame":"x"}}', ("container",), ()),
        # an escaped key after a member already read (that member's answer must not leak out)
        (b'{"eventName":"x","y":{"a":"","\\u0062":{}}}', ("y",), ()),
        (b'{"eventName":"x","executable":{"path":"/a","\\u0070ath":"/b"}}', ("executable",), ()),
        (b'{"eventName":"x","y":1.0}', ("y",), ()),
        (b'{"eventName":"x","y":1e2}', ("y",), ()),
        (b'{"eventName":"x","y":9223372036854775808}', ("y",), ()),
        (b'{"eventName":"x","y":-9223372036854775809}', ("y",), ()),
        # an argument that is not a readable value
        (b'{"eventName":"x","args":[{"name":"argv","value":["sh",1]}]}', (), ("argv",)),
        (b'{"eventName":"x","args":[{"name":"argv","value":["sh",null]}]}', (), ("argv",)),
        (b'{"eventName":"x","args":[{"name":"argv","value":["sh",["-c"]]}]}', (), ("argv",)),
        (b'{"eventName":"x","args":[{"name":"argv","value":["sh","\\u002dc"]}]}', (), ("argv",)),
        (b'{"eventName":"x","args":[{"name":"a","value":{"b":1}}]}', (), ("a",)),
        (b'{"eventName":"x","args":[{"name":"a","value":0.5}]}', (), ("a",)),
        # an argument whose name or value is not certain
        (b'{"eventName":"x","args":[{"name":"\\u0061","value":"/etc/shadow"}]}', (), ("a",)),
        (b'{"eventName":"x","args":[{"name":"a","\\u0076alue":"/etc/shadow"}]}', (), ("a",)),
        (b'{"eventName":"x","args":[{"name":"a","value":"/x","value":"/etc/shadow"}]}', (), ("a",)),
        (b'{"eventName":"x","args":[{"value":"/etc/shadow"}]}', (), ("a",)),
        (b'{"eventName":"x","args":[{"name":"a"},"b"]}', (), ("a",)),
        # scan is not sure of the record
        (b'{"eventName":"x","eventName":"y"}', ("eventName",), ()),
        (b'{"eventName":"x","hostProcessId":null}', ("eventName",), ()),
        (b'{"eventName":"x","args":null}', (), ()),
        (b'{"eventName":"x","processName":"caf\xc3\xa9"}', ("eventName",), ()),
        (b'{"eventName":"x"', ("eventName",), ()),
        (b'{"eventName":"x"}{}', ("eventName",), ()),
        (b'{"eventName":"x","y":' + b"[" * 40 + b"]" * 40 + b"}", ("eventName",), ()),
        (b"[]", (), ()),
        (b"", (), ()),
    ],
)
def test_not_sure(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...]) -> None:
    assert _extract(text, keys, arg_names) is None
    check(text, keys, arg_names)


# --- real Tracee records ---------------------------------------------------------------------------

CONTEXT = (
    "eventName",
    "hostProcessId",
    "hostThreadId",
    "threadStartTime",
    "processName",
    "executable",
    "container",
    "containerId",
    "timestamp",
    "returnValue",
    "syscall",
)


def test_tracee_recordings_are_read_by_extract() -> None:
    """Real Tracee output (v0.8 and v0.24.1 documentation events): every record is read, as orjson reads it."""
    lines = tracee_recordings()
    answers = [check(line, CONTEXT, ("pathname", "argv", "flags")) for line in lines]
    read = [answer for answer in answers if answer is not None]
    assert len(read) == len(lines) > 20
    assert sum("container" in fields for fields, _ in read) >= 10  # v0.24.1's container objects
    assert any(type(args.get("argv")) is list for _, args in read)  # execve's argv


def test_tracee_signature_test_events_agree_with_the_full_decoding() -> None:
    """The events of Tracee's own signature tests (arguments of every kind: sockaddr objects, lists ...)."""
    answered = 0
    for raw in signature_test_events():
        names = tuple(arg["name"] for arg in raw.get("args") or ())
        for text in (orjson.dumps(raw), json.dumps(raw, indent=1).encode()):
            answered += check(text, CONTEXT, names) is not None
    assert answered > 150


# --- bad calls --------------------------------------------------------------------------------------


def test_bad_calls_raise() -> None:
    record = b'{"eventName":"x","args":[{"name":"a","value":1}]}'
    for call in (
        ("{}", (), ()),
        (bytearray(record), (), ()),
        (record, ["eventName"], ()),
        (record, (), ["a"]),
        (record, (b"eventName",), ()),
        (record, (), (1,)),
        (record, ("eventName", None), ()),
    ):
        with pytest.raises(TypeError):
            _recscan.extract(*call)
    with pytest.raises(TypeError):
        _recscan.extract(record, ())
    with pytest.raises(TypeError):
        _recscan.extract(record, (), (), ())
    # a record scan is not sure of does not hide a bad call
    with pytest.raises(TypeError):
        _recscan.extract(b"not json", (), (2,))


def test_names_no_record_can_hold_are_absent() -> None:
    """Keys and argument names that are not ASCII (a record read is), even lone surrogates: absent, not an error."""
    record = b'{"eventName":"x","caf":1,"args":[{"name":"a","value":1},{"name":"caf","value":2}]}'
    odd = ("caf\u00e9", "\ud800", "\udfff\u00e9", "\U0001f600")
    assert _extract(record, (*odd, "eventName"), (*odd, "a")) == ({"eventName": "x"}, {"a": 1})
    assert _extract(record, odd, odd) == ({}, {})
