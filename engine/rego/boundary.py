"""What an event becomes before a Rego engine sees it: checked JSON text.

Native code is fragile at this edge. Probed with regorus 0.13
(``gordon-to-regorus``) and OPA 1.20 (``opa-golib-python-bindings`` 0.4.4):

* regorus's ``set_input`` (a Python dict) **crashes the process with SIGSEGV**
  on a lone surrogate in a string or a key (``"\\ud800"``) and on nesting of
  about 10,000 levels (a stack overflow); it turns integers beyond 64 bits
  into imprecise floats, ``None``/int/tuple keys into strings, and fails later,
  at evaluation, on NaN and infinities;
* regorus's ``set_input_json`` (text) reports all of these as errors: its JSON
  reader refuses lone surrogate escapes, numbers out of range, NaN and more
  than 128 levels of nesting;
* OPA takes JSON text; the Go reader refuses more than 10,000 levels, replaces
  invalid UTF-8 with U+FFFD and stops at a NUL byte (C strings); it runs out
  of memory (and aborts the process) only on inputs far beyond
  :data:`~.limits.MAX_INPUT_BYTES`.

So both engines get JSON text, never Python objects: the JSON line the event
was read from when there is one, else ``orjson.dumps`` of the event, which
refuses lone surrogates, integers beyond 64 bits, non-string keys, objects
that are not JSON and nesting beyond 255 levels, and writes NaN and
infinities as ``null`` (as JavaScript's ``JSON.stringify`` does). Then the
text's size and nesting are checked against :mod:`.limits`. The worker also
refuses text that is not UTF-8 or contains a NUL byte. An event that fails
raises :class:`RegoInputError`: a signature error for that event, never a
crash.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

import orjson

from ..events import Event
from .limits import MAX_INPUT_BYTES, MAX_INPUT_NESTING

__all__ = ["RegoInputError", "event_json", "nesting"]

_PREFIX: Final = "the event cannot be handed to Rego: "


class RegoInputError(ValueError):
    """An event cannot be given to the Rego engines as it is (the message says why)."""


def event_json(event: Event) -> bytes:
    """The JSON text of ``event`` as the Rego engines get it.

    :raises RegoInputError: for values JSON cannot carry and inputs over the limits.
    """
    text = event.text
    if text is None:
        try:
            text = orjson.dumps(event.raw)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise RegoInputError(_PREFIX + _encode_problem(str(exc))) from None
    size = len(text)
    if size > MAX_INPUT_BYTES:
        raise RegoInputError(f"{_PREFIX}its JSON is {size:,} bytes long (limit {MAX_INPUT_BYTES:,})")
    if size > 2 * MAX_INPUT_NESTING and text.count(b"[") + text.count(b"{") > MAX_INPUT_NESTING:
        depth = nesting(text)
        if depth > MAX_INPUT_NESTING:
            raise RegoInputError(f"{_PREFIX}its JSON is nested {depth} levels deep (limit {MAX_INPUT_NESTING})")
    return text


def _encode_problem(message: str) -> str:
    known = {
        "surrogates not allowed": "a string is not valid Unicode (a lone UTF-16 surrogate)",
        "Integer exceeds 64-bit range": "an integer does not fit in 64 bits",
        "Dict key must be str": "an object has a key that is not a string",
        "Recursion limit reached": f"it is nested more than {MAX_INPUT_NESTING} levels deep",
    }
    for marker, text in known.items():
        if marker in message:
            return text
    return f"it is not JSON ({message})"


def nesting(text: bytes) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings do not count)."""
    brackets = _STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[byte] for byte in brackets), default=0)


_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
