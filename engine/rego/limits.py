"""Limits that keep one Rego rule, or one event, from crashing or stalling the engine.

Neither Rego engine can be stopped from outside once it runs: regorus (Rust)
and OPA (Go) have no time, instruction or memory limit reachable from their
Python packages (regorus's Rust API has them, its Python binding does not;
the RVM's fixed 25,000-instruction limit does not cover built-ins such as
``numbers.range``), and a runaway evaluation either holds the interpreter
until it finishes or makes the native code abort the whole process when
memory runs out. So pytracee bounds Rego in four layers:

1. **At load, statically** (:func:`check_source`, :func:`check_ast`): a file
   whose ``[``/``{`` brackets nest deeper than :data:`MAX_BRACKET_NESTING`
   (regorus's parser takes exponential time on them: 16 levels take seconds),
   or that calls ``numbers.range``/``numbers.range_step`` with constant bounds
   spanning more than :data:`MAX_RANGE_LENGTH` numbers, is refused with its
   file and line.
2. **At the boundary** (:mod:`.boundary`): an event is handed over as JSON
   text of at most :data:`MAX_INPUT_BYTES` bytes, nested at most
   :data:`MAX_INPUT_NESTING` levels, with valid Unicode and 64-bit integers;
   any other event is a signature error for that event.
3. **In a worker process** (:mod:`.worker`, :mod:`.client`): every Rego engine
   runs in a child process whose address space may grow by at most
   ``--rego-memory-limit`` MB (:data:`DEFAULT_MEMORY_LIMIT_MB`); loading one
   file may take :data:`LOAD_TIMEOUT_S` seconds. A worker that dies or
   overruns is killed and restarted with the same rules, so the engine's
   process never crashes or hangs with it.
4. **Per evaluation, measured** (:class:`TimeBudget`, the same rule as CEL's
   ``--cel-time-budget``): each signature's evaluation of one event is timed
   in the worker against ``--rego-time-budget`` (:data:`DEFAULT_TIME_BUDGET_MS`);
   :data:`MAX_OVERRUNS` overruns within :data:`OVERRUN_WINDOW` evaluations
   disable the signature for the rest of the run. One event taking longer
   than :data:`HARD_TIMEOUT_FACTOR` budgets (1 s by default, at least
   :data:`MIN_HARD_TIMEOUT_S`) is stopped: the worker is killed, the signature
   it was evaluating is disabled at once, and the others go on. Both are
   reported as a signature error, so they show in the summary and fail a
   ``--strict`` run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from ..cel.limits import MAX_OVERRUNS, OVERRUN_WINDOW, TimeBudget, budget_ms

__all__ = [
    "DEFAULT_MEMORY_LIMIT_MB",
    "DEFAULT_TIME_BUDGET_MS",
    "HARD_TIMEOUT_FACTOR",
    "LOAD_TIMEOUT_S",
    "MAX_BRACKET_NESTING",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_NESTING",
    "MAX_OVERRUNS",
    "MAX_RANGE_LENGTH",
    "MAX_WORKER_RESTARTS",
    "MIN_HARD_TIMEOUT_S",
    "OVERRUN_WINDOW",
    "SourceTooComplex",
    "TimeBudget",
    "budget_ms",
    "check_ast",
    "check_source",
    "hard_timeout",
]

#: Time budget of one signature's evaluation of one event (CEL's, Tracee's CEL timeout).
DEFAULT_TIME_BUDGET_MS: Final = 5.0
#: One event's evaluation taking this many budgets is stopped (the worker is killed) ...
HARD_TIMEOUT_FACTOR: Final = 200
#: ... but never sooner than this (a pause of a busy machine is not a runaway rule).
MIN_HARD_TIMEOUT_S: Final = 0.25
#: How much the worker's address space may grow beyond what it needs at start, in MB (0: no limit).
DEFAULT_MEMORY_LIMIT_MB: Final = 1024
#: Longest time loading one rule file may take in the worker (parsing, compiling, metadata).
LOAD_TIMEOUT_S: Final = 10.0
#: Worker restarts (deaths and kills) after which the run's Rego signatures are all disabled.
MAX_WORKER_RESTARTS: Final = 20

#: Deepest accepted nesting of [ and { in a rule file.
MAX_BRACKET_NESTING: Final = 8
#: Most numbers a numbers.range/numbers.range_step with constant bounds may produce.
MAX_RANGE_LENGTH: Final = 100_000
_RANGE_BUILTINS: Final = ("numbers.range", "numbers.range_step")

#: Largest event JSON handed to Rego, in bytes.
MAX_INPUT_BYTES: Final = 8 << 20
#: Deepest event JSON handed to Rego (regorus's own reader stops at 128).
MAX_INPUT_NESTING: Final = 100


def hard_timeout(budget_ms: float) -> float:
    """Seconds after which one event's evaluation is stopped, for a budget in milliseconds."""
    return max(MIN_HARD_TIMEOUT_S, budget_ms * HARD_TIMEOUT_FACTOR / 1000.0)


class SourceTooComplex(ValueError):
    """A rule file exceeds a load-time limit; ``line`` is where."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# --- the source text ---------------------------------------------------------------------


def check_source(source: str) -> None:
    """Refuse brackets nested deeper than :data:`MAX_BRACKET_NESTING`, before any parser sees them.

    A lexical scan: strings (``"..."`` with escapes, raw ```...```) and
    comments (``#`` to the end of the line) are skipped; ``(`` does not count
    (regorus parses nested parentheses quickly).

    :raises SourceTooComplex: naming the line of the bracket too many.
    """
    depth = 0
    line = 1
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
        elif c == "#":
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c == '"':
            i += 1
            while i < n and source[i] != '"' and source[i] != "\n":
                i += 2 if source[i] == "\\" else 1
            if i < n and source[i] == "\n":  # unterminated: the parser reports it
                continue
        elif c == "`":
            end = source.find("`", i + 1)
            end = n if end < 0 else end
            line += source.count("\n", i, end)
            i = end
        elif c in "[{":
            depth += 1
            if depth > MAX_BRACKET_NESTING:
                raise SourceTooComplex(
                    f"brackets ([ and {{) nested more than {MAX_BRACKET_NESTING} deep: refused, "
                    f"since parsing such nesting takes exponential time",
                    line,
                )
        elif c in "]}" and depth:
            depth -= 1
        i += 1


# --- the parsed module -------------------------------------------------------------------


def check_ast(rules: Any, ref_name: Any) -> None:
    """Refuse ``numbers.range``/``numbers.range_step`` calls with constant bounds that are too far apart.

    :param rules: the ``rules`` of a module's regorus AST.
    :param ref_name: turns a call's ``fcn`` node into its dotted name.
    :raises SourceTooComplex: naming the call's line.
    """
    for call in _calls(rules):
        name = ref_name(call.get("fcn"))
        if name not in _RANGE_BUILTINS:
            continue
        params = [_number(p) for p in call.get("params") or ()]
        if len(params) < 2 or params[0] is None or params[1] is None:
            continue  # bounds known only at run time: the worker's limits apply
        step = params[2] if name == "numbers.range_step" and len(params) > 2 else 1
        if not step:
            continue  # the built-in refuses a step of 0 itself
        length = abs(params[1] - params[0]) / abs(step) + 1
        if length > MAX_RANGE_LENGTH:
            span = call.get("span") or {}
            raise SourceTooComplex(
                f"{name} would produce {length:,.0f} numbers (limit {MAX_RANGE_LENGTH:,}): refused, since "
                f"building it takes gigabytes of memory",
                int(span.get("line", 0)),
            )


def _calls(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        call = node.get("Call") if len(node) == 1 else None
        if isinstance(call, dict):
            yield call
        for value in node.values():
            yield from _calls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _calls(value)


def _number(node: Any) -> float | None:
    """The value of a number literal (``-5`` included), else ``None``."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    kind, body = next(iter(node.items()))
    if kind == "Number" and isinstance(body, dict):
        value = body.get("value")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "UnaryExpr" and isinstance(body, dict):
        inner = _number(body.get("expr"))
        return -inner if inner is not None else None
    return None
