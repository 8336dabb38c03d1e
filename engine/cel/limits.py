"""Limits that keep one CEL rule, one event or one rule file from stalling the engine.

Tracee gives each CEL evaluation a 5 ms timeout and a cost limit. Neither CEL
backend here can interrupt an evaluation from outside, and cel-expr-python
exposes none of cel-cpp's runtime options (only a fixed budget of 10,000
comprehension iterations per evaluation), so pytracee bounds the cost in layers:

1. **At load, the text** (:func:`check_expression`, both backends): an expression
   longer than :data:`MAX_EXPRESSION_LENGTH` characters, nested deeper than
   :data:`MAX_NESTING` brackets, or with comprehensions (``all``, ``exists``,
   ``exists_one``, ``map``, ``filter``) nested deeper than
   :data:`MAX_COMPREHENSION_NESTING` is rejected with a clear error naming the
   file and line; so is a detector with more than :data:`MAX_CONDITIONS`
   conditions or :data:`MAX_OUTPUT_FIELDS` output fields. The parsers add
   their own limits (cel-expr-python: 32 levels of recursion).
2. **At load, the worst case** (:mod:`.cost`, both backends): from the parse
   tree, with events bounded as in 4., a detector is refused (file:line and
   the node responsible) when any value an expression can build may exceed
   :data:`MAX_VALUE_SIZE` characters (``replace(x, "", "...")`` nested) or
   when one event's evaluation, all expressions together, may cost more than
   :data:`MAX_COST` units (about a nanosecond of cel-cpp work each: ``map``
   over an event's list, loops calling ``getEventData``, ...).
3. **Per evaluation, inside the engines**: after :data:`ITERATION_BUDGET`
   comprehension steps an evaluation stops ("Iteration budget exceeded", an
   evaluation error: no match); cel-cpp does this itself, pytracee does the
   same on cel-python, and also stops a cel-python evaluation running longer
   than :data:`ABORT_AFTER_BUDGETS` time budgets. The string functions
   (``replace``, ``join``, ``split``, ``upper``, ``lower``) refuse to build a
   result over :data:`MAX_VALUE_SIZE` characters (an evaluation error).
4. **Per event, at the boundary** (:mod:`.boundary`): an event goes to CEL only
   within :data:`MAX_EVENT_SIZE` characters, :data:`MAX_EVENT_VALUES` values
   and :data:`MAX_EVENT_DEPTH` levels of nesting, with JSON's types; lone
   surrogates become U+FFFD and integers beyond 64 bits doubles (as in Go's
   JSON decoder). Any other event is not evaluated: an evaluation error of
   each CEL signature it reaches, counted as no match. Events read by the
   reader (64 KiB lines) are within these bounds.
5. **Per event, measured** (:class:`TimeBudget`): the time one event's
   evaluation takes (every condition and output field) is compared with the
   budget, :data:`DEFAULT_TIME_BUDGET_MS` (5 ms, Tracee's timeout) for
   cel-expr-python and :data:`DEFAULT_TIME_BUDGET_MS_PURE_PYTHON` for the much
   slower cel-python; ``--cel-time-budget MS`` overrides both. Every overrun
   is counted (logged at debug level; the count at the end of the run, at
   info level); :data:`MAX_OVERRUNS` overruns within
   :data:`OVERRUN_WINDOW` evaluations disable the signature for the rest of
   the run (reported once as a signature error, so it shows in the summary
   and fails a ``--strict`` run). The window keeps a rare pause of the Python
   process (garbage collection, a busy machine) from disabling a good rule.
6. **Rule files** (:mod:`.yamlload`): a detector file is read up to
   :data:`MAX_RULE_FILE_SIZE` bytes; a YAML document with more than
   :data:`MAX_YAML_ALIASES` aliases or more than :data:`MAX_YAML_NODES` nodes
   once its aliases are expanded (a "billion laughs") is refused with its line.
"""

from __future__ import annotations

import argparse
from typing import Final

__all__ = [
    "ABORT_AFTER_BUDGETS",
    "DEFAULT_TIME_BUDGET_MS",
    "DEFAULT_TIME_BUDGET_MS_PURE_PYTHON",
    "ITERATION_BUDGET",
    "MAX_COMPREHENSION_NESTING",
    "MAX_CONDITIONS",
    "MAX_COST",
    "MAX_EVENT_DEPTH",
    "MAX_EVENT_SIZE",
    "MAX_EVENT_VALUES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING",
    "MAX_OUTPUT_FIELDS",
    "MAX_OVERRUNS",
    "MAX_RULE_FILE_SIZE",
    "MAX_VALUE_SIZE",
    "MAX_YAML_ALIASES",
    "MAX_YAML_NODES",
    "OVERRUN_WINDOW",
    "ExpressionTooComplex",
    "TimeBudget",
    "budget_ms",
    "check_expression",
]

#: Longest accepted expression, in characters.
MAX_EXPRESSION_LENGTH: Final = 8192
#: Deepest accepted nesting of (), [] and {}.
MAX_NESTING: Final = 24
#: Deepest accepted nesting of comprehension macros.
MAX_COMPREHENSION_NESTING: Final = 3
#: Most conditions / output fields one detector may have.
MAX_CONDITIONS: Final = 64
MAX_OUTPUT_FIELDS: Final = 64

#: Worst-case cost of one event's evaluation by one detector, in units of about 1 ns of cel-cpp (see .cost).
MAX_COST: Final = 50_000_000
#: Largest value (characters of strings and bytes, summed) an expression may build, in the worst case.
MAX_VALUE_SIZE: Final = 1 << 20
#: Comprehension steps of one evaluation (cel-cpp's fixed budget; enforced on cel-python too).
ITERATION_BUDGET: Final = 10_000

#: Largest event CEL evaluates: characters of its strings and bytes (Tracee's 64 KiB JSON lines).
MAX_EVENT_SIZE: Final = 64 * 1024
#: Most values (scalars, containers, keys) in one event CEL evaluates.
MAX_EVENT_VALUES: Final = 8192
#: Deepest nesting of lists and maps in one event CEL evaluates (cel-cpp crashes on ~10,000).
MAX_EVENT_DEPTH: Final = 64

#: Largest detector file read, in bytes.
MAX_RULE_FILE_SIZE: Final = 1 << 20
#: Most nodes of one YAML document once its aliases are expanded.
MAX_YAML_NODES: Final = 10_000
#: Most aliases (``*name``) in one YAML document.
MAX_YAML_ALIASES: Final = 100

#: A cel-python evaluation is stopped after this many time budgets (cel-cpp cannot be stopped).
ABORT_AFTER_BUDGETS: Final = 2.0

#: Time budget of one event's evaluation on cel-expr-python (Tracee's CEL timeout).
DEFAULT_TIME_BUDGET_MS: Final = 5.0
#: The same on cel-python, a tree-walking interpreter about 100 times slower.
DEFAULT_TIME_BUDGET_MS_PURE_PYTHON: Final = 100.0
#: Overruns within OVERRUN_WINDOW evaluations that disable a signature.
MAX_OVERRUNS: Final = 3
OVERRUN_WINDOW: Final = 1000

_COMPREHENSIONS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_OPENING = {"(": ")", "[": "]", "{": "}"}


class ExpressionTooComplex(ValueError):
    """An expression exceeds a load-time limit."""


def check_expression(text: str) -> None:
    """Reject expressions beyond the load-time limits.

    A lexical scan: string literals are skipped, brackets counted, and a
    bracket opened right after ``.all``/``.exists``/... counts as a comprehension.

    :raises ExpressionTooComplex: naming the limit exceeded.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionTooComplex(f"expression is {len(text)} characters long (limit {MAX_EXPRESSION_LENGTH})")
    stack: list[bool] = []  # per open bracket: is it a comprehension's
    comprehensions = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _skip_string(text, i)
            continue
        if c in _OPENING:
            is_comprehension = c == "(" and _preceding_method(text, i) in _COMPREHENSIONS
            stack.append(is_comprehension)
            comprehensions += is_comprehension
            if len(stack) > MAX_NESTING:
                raise ExpressionTooComplex(f"brackets nested more than {MAX_NESTING} deep")
            if comprehensions > MAX_COMPREHENSION_NESTING:
                raise ExpressionTooComplex(f"comprehensions nested more than {MAX_COMPREHENSION_NESTING} deep")
        elif c in ")]}" and stack:
            comprehensions -= stack.pop()
        i += 1


def _skip_string(text: str, start: int) -> int:
    """Index just after the string literal starting at ``start`` (raw, triple-quoted or plain)."""
    quote = text[start]
    triple = text.startswith(quote * 3, start)
    raw = start > 0 and text[start - 1] in "rR"
    delimiter = quote * 3 if triple else quote
    i = start + len(delimiter)
    while i < len(text):
        if text[i] == "\\" and not raw:
            i += 2
            continue
        if text.startswith(delimiter, i):
            return i + len(delimiter)
        i += 1
    return len(text)  # unterminated: the parser reports it


def _preceding_method(text: str, paren: int) -> str:
    """The identifier before ``(`` at ``paren`` when it is a method call (``x.name(``), else ``""``."""
    end = paren
    while end > 0 and text[end - 1].isspace():
        end -= 1
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    before = start
    while before > 0 and text[before - 1].isspace():
        before -= 1
    return text[start:end] if before > 0 and text[before - 1] == "." else ""


class TimeBudget:
    """Counts evaluations that took longer than the budget; says when to give up.

    :param budget_ms: the budget of one event's evaluation, in milliseconds.
    """

    __slots__ = ("_recent", "overruns", "seconds")

    def __init__(self, budget_ms: float) -> None:
        self.seconds = budget_ms / 1000.0
        self.overruns = 0
        self._recent: list[int] = []  # evaluation numbers of the latest overruns

    def overrun(self, evaluation: int) -> bool:
        """Record an overrun at evaluation number ``evaluation``; True when the signature should stop."""
        self.overruns += 1
        recent = self._recent
        recent.append(evaluation)
        if len(recent) > MAX_OVERRUNS:
            del recent[0]
        return len(recent) == MAX_OVERRUNS and evaluation - recent[0] < OVERRUN_WINDOW


def budget_ms(text: str) -> float:
    """The ``argparse`` type of the time-budget options: a positive, finite number of milliseconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of milliseconds, not {text!r}")
    return value
