"""Hypothesis strategies for Tracee records as JSON text, shared by the record scanner's
property tests: records like Tracee's (plain, or with odd fields, names and values), their
JSON text in several styles, and that text mutated the ways an attacker would (escapes,
duplicate keys, decoy keys in nested objects, non-ASCII, nulls, huge numbers, deep nesting,
truncation, trailing bytes); and the real records they are held to as well."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
from hostile_values import HOSTILE_TEXT, VALUES
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"


def tracee_recordings() -> list[bytes]:
    """The records of real Tracee output: the v0.24.1 and v0.8.3 documentation events."""
    return [
        line
        for name in ("events_v0.24.1_docs.jsonl", "events_v0.8.3_docs.jsonl")
        for line in (FIXTURES / name).read_bytes().splitlines()
        if line.strip()
    ]


def signature_test_events() -> list[dict[str, Any]]:
    """The events of Tracee's own signature unit tests (v0.24.1)."""
    cases = json.loads((FIXTURES / "go_signature_unit_tests_v0.24.1.json").read_text())["cases"]
    return [raw for case in cases for raw in case["events"]]


#: Events whose arguments the scanner's tests read, and the names read: plain records are named
#: after these.
ARG_TABLE = {"security_file_open": ("pathname",), "magic_write": ("pathname", "flags"), "x": ("a", "b", "c")}

NAMES = st.sampled_from(["security_file_open", "magic_write", "execve", "x", "", "a\u00e9", "open\\u0061t"])
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1]))
PLAIN = st.text(alphabet="/etcabc.-_ ", max_size=12)
TEXT = st.one_of(PLAIN, PLAIN, st.text(alphabet='/etcabc.-_ "\\\x01\x7f\u00e9', max_size=12), HOSTILE_TEXT)
ARG_VALUES = st.one_of(TEXT, INTS, st.booleans(), st.none(), VALUES)
ARG_NAMES = st.sampled_from(["pathname", "flags", "a", "b", "c", "d"])
#: JSON as Tracee writes it: ASCII text without escapes, 64-bit integers, doubles well within range.
PLAIN_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(-1e200, 1e200), PLAIN),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PLAIN, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def args_lists(draw: Any, odd: bool) -> Any:
    if odd and draw(st.integers(0, 20)) == 0:
        return draw(VALUES)  # not a list of arguments at all
    args: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        arg: dict[str, Any] = {}
        if not odd or draw(st.integers(0, 20)):
            arg["name"] = draw(ARG_NAMES | TEXT) if odd else draw(ARG_NAMES)
        arg["type"] = "const char*"
        if draw(st.integers(0, 5)):
            arg["value"] = draw(ARG_VALUES if odd else PLAIN_JSON)
        args.append(arg if not odd or draw(st.integers(0, 20)) else draw(VALUES))
    return args


@st.composite
def events(draw: Any, odd: bool = True) -> dict[str, Any]:
    """A record like Tracee's; ``odd``: with fields of wrong types, odd names and values now and then."""

    def _field(right: st.SearchStrategy[Any]) -> Any:
        return draw(VALUES) if odd and draw(st.integers(0, 20)) == 0 else draw(right)

    raw: dict[str, Any] = {}
    if not odd or draw(st.integers(0, 9)):
        raw["eventName"] = _field(NAMES if odd else st.sampled_from(sorted(ARG_TABLE)))
    ints = INTS if odd else st.integers(-(2**63), 2**63 - 1)
    text = TEXT if odd else PLAIN
    junk = VALUES if odd else PLAIN_JSON
    fields = {
        "timestamp": ints,
        "processId": ints,
        "hostProcessId": st.integers(0, 5) | ints,
        "threadId": ints,
        "parentProcessId": ints,
        "userId": ints,
        "returnValue": ints,
        "eventId": st.sampled_from(["257", "", "1a", "\u00b2", 5, 2**64, -1] if odd else ["257", 5, -1]),
        "processName": text,
        "hostName": text,
        "containerId": st.sampled_from(["", "abc", "def"]) | text,
        "contextFlags": st.fixed_dictionaries(
            {}, optional={"containerStarted": st.booleans() | VALUES if odd else st.booleans(), "isCompat": junk}
        ),
        "container": st.fixed_dictionaries(
            {}, optional={"id": st.sampled_from(["", "abc"]) | (VALUES if odd else text), "name": junk}
        ),
        "kubernetes": st.dictionaries(text, junk, max_size=2),
        "executable": st.fixed_dictionaries({"path": text}),
        "matchedPolicies": junk,
        "stackAddresses": st.none(),
    }
    for key in draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields))):
        raw[key] = _field(fields[key])
    if draw(st.integers(0, 3)):
        raw["args"] = draw(args_lists(odd))
    keys = list(raw)
    order = draw(st.permutations(keys))
    return {key: raw[key] for key in order}


def dump(draw: Any, raw: Any) -> bytes:
    style = draw(st.integers(0, 3))
    if style == 0:
        return orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS) if orjson_can(raw) else json.dumps(raw).encode()
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", " :\r\n ")]))
    text = json.dumps(raw, ensure_ascii=style == 1, separators=separators)
    return text.encode("utf-8", "surrogatepass")


def orjson_can(raw: Any) -> bool:
    try:
        orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


INSERTS = [
    b"\\u0065",
    b'"eventName":"execve",',
    b'"eventName":"x",',
    b'"event\\u004eame":"x",',
    b'"hostProcessId":7,',
    b'"containerId":"zzz",',
    b'"container":{"id":"zzz"},',
    b'"contextFlags":{"containerStarted":true},',
    b'"args":[{"eventName":"x"}],',
    b'{"name":"pathname","value":"/etc/shadow"},',
    b'"value":"/etc/shadow",',
    b"null",
    b"1e999",
    b"-0.5e-400",
    b"18446744073709551616",
    b"9223372036854775808",
    b"1234567890123456789",
    b"-00",
    b"01",
    b"-",
    b"1.",
    b"1e",
    b"2E+5",
    b"-0.0e-1",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\xc3\xa9",
    b"\xff",
    b"\x00",
    b"\x7f",
    b" ",
    b",",
    b"}",
    b"]",
    b"[",
    b"{",
    b'"',
    b"\\",
    b"\t\r\n",
    b"true",
]


@st.composite
def mutated(draw: Any) -> bytes:
    text = bytearray(dump(draw, draw(events(odd=draw(st.booleans())))))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            text[at:at] = draw(st.sampled_from(INSERTS))
        elif kind == 1 and text:
            end = draw(st.integers(at, min(len(text), at + 8)))
            del text[at:end]
        elif kind == 2:
            del text[at:]  # truncated
        elif kind == 3 and at < len(text):
            text[at] = draw(st.integers(0, 255))
        elif kind == 4:
            text += draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b",", b"\x00"]))
        else:  # a stretch repeated: duplicate keys and values
            end = draw(st.integers(at, min(len(text), at + 40)))
            text[end:end] = text[at:end]
    return bytes(text)


def in_pieces(pieces: list[bytes]) -> io.BufferedReader:
    """A stream that hands its data over as these pieces, as a pipe would: each read returns at
    most the rest of one piece (a reader's chunk, whatever size it asks for)."""
    return io.BufferedReader(_Pieces(pieces))


class _Pieces(io.RawIOBase):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [piece for piece in pieces if piece]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pieces:
            return 0
        piece = self.pieces[0]
        size = min(len(piece), len(buffer))
        buffer[:size] = piece[:size]
        if size < len(piece):
            self.pieces[0] = piece[size:]
        else:
            del self.pieces[0]
        return size
