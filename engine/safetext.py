"""Event data is attacker-chosen: nothing of it reaches a terminal or a JSON line raw.

File names, argv, environment, comm and host names are whatever the traced programs
made them: newlines, ``ESC [2J``, other C0 and C1 control characters, Unicode line
separators and bidirectional overrides, invalid UTF-8 (decoded as U+FFFD in the
collector). This module renders them safely:

* :func:`escape_text` for text meant for people (the table printers, text finding
  templates, log messages): every such character becomes a visible escape (``\\n``,
  ``\\x1b``, ``\\u2028``) and a backslash becomes ``\\\\``, as ``ls -b`` does, so an
  escape in the output always means the character, never a literal backslash.
* :func:`json_line` for ``-o json``: one valid JSON object per line, lossless. orjson
  already escapes C0; DEL, C1, U+2028/U+2029 and the bidi controls are escaped too
  (``\\u0085``), so line splitters that treat them as line ends (``str.splitlines``,
  JavaScript) and terminals showing the JSON see no raw ones; lone surrogates (which
  orjson refuses and strict parsers reject) become U+FFFD.
* :func:`escaped` makes an escaped copy of a JSON-like value, and :func:`escaped_finding`
  of a finding: the finding printer renders text templates (``default``, ``simple``,
  ``csv``, ``xml``, template files) from such copies; the JSON templates (``rawjson``,
  ``sprig``) keep the raw values, which their JSON encoding escapes.
* :class:`EscapingLogFilter` escapes log messages (a signature error can quote an event).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .events import Event
from .findings import Finding

__all__ = [
    "JSON_TEMPLATES",
    "EscapingLogFilter",
    "escape_text",
    "escaped",
    "escaped_finding",
    "json_line",
]

#: Characters no terminal should receive from event data: C0 (tab, newline and CR
#: included), DEL, C1, the Unicode line and paragraph separators, and the bidirectional
#: embeddings, overrides and isolates ("Trojan Source" reordering).
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\\\]")
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
#: What orjson leaves raw but a JSON line must not carry (it escapes C0, '"' and '\').
_JSON_UNSAFE: Final = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: Built-in finding templates whose output is JSON (their encoder escapes every value).
JSON_TEMPLATES: Final = frozenset({"rawjson", "sprig"})


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with control characters, line separators, bidi controls and backslashes escaped."""
    return _UNSAFE.sub(_escape_char, text) if _UNSAFE.search(text) else text


def escaped(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, numbers) with every string escaped."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, Mapping):
        return {escaped(k) if isinstance(k, str) else k: escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped(item) for item in value]
    return value


def _json_escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _scrub(value: Any) -> Any:
    """A copy of ``value`` that the JSON encoders accept: lone surrogates become U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_scrub(k) if isinstance(k, str) else k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return value


def _ascii_escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


_NON_ASCII: Final = re.compile("[^\x00-\x7e]")


def json_line(value: Any, ascii_only: bool = False) -> str:
    """``value`` as one line of strict JSON (no newline at the end); see the module's notes.

    ``ascii_only``: every non-ASCII character as a ``\\u`` escape (for a stream that is not UTF-8).
    """
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a lone surrogate, or an integer beyond 64 bits
        text = json.dumps(_scrub(value), ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        if data.isascii() and b"\x7f" not in data:
            return data.decode("ascii")
        text = data.decode("utf-8")
    return (_NON_ASCII if ascii_only else _JSON_UNSAFE).sub(
        _ascii_escape_char if ascii_only else _json_escape_char, text
    )


class EscapingLogFilter(logging.Filter):
    """Escapes the message of every record (tracebacks are left alone: they are ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: the handler reports it
            return True
        safe = escape_text(message)
        if safe is not message:
            record.msg, record.args = safe, None
        return True


def escaped_finding(finding: Finding) -> Finding:
    """A copy of ``finding`` whose data, event and metadata strings are escaped."""
    meta = finding.sig_metadata
    safe_meta = dataclasses.replace(
        meta,
        id=escape_text(meta.id),
        name=escape_text(meta.name),
        event_name=escape_text(meta.event_name),
        description=escape_text(meta.description),
        tags=[escape_text(t) for t in meta.tags] if meta.tags is not None else None,
        properties=escaped(dict(meta.properties)),
    )
    data = escaped(finding.data) if finding.data is not None else None
    event = Event(escaped(finding.event.raw), source=finding.event.source)
    return Finding(data, event, safe_meta)
