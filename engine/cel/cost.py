"""The worst-case cost of a CEL expression, estimated at load from its parse tree.

Neither backend can stop an evaluation from outside, and cel-cpp offers no
cost limit through cel-expr-python (only its fixed budget of 10,000
comprehension iterations), so an expression's worst case is bounded before
it ever runs: every node of the tree (:mod:`.parsetree`) gets an upper bound
on the value it can produce and on the work evaluating it costs, given that
an event is at most :data:`~.limits.MAX_EVENT_SIZE` characters and
:data:`~.limits.MAX_EVENT_VALUES` values (:mod:`.boundary` enforces both) and
that comprehensions stop after :data:`~.limits.ITERATION_BUDGET` steps.

* A **value** is bounded by its size (characters of strings and bytes, summed
  over the whole value) and its count (scalars, containers and keys). ``event``
  and ``getEventData(...)`` are the whole event at most; ``a + b`` adds the
  bounds; ``replace``, ``split``, ``join`` and the other functions have their
  own formulas (``replace(s, "", new)`` inserts ``new`` at every position).
* The **cost** is in units of roughly a nanosecond of cel-cpp work, from
  measurements: a node, a character copied or compared, a list element
  copied, a value converted between Python and CEL, a call into a Python
  function. Converting the event and the arguments ``getEventData`` returns
  is charged as what it is: the event once per evaluation, each argument once
  per call (arguments are disjoint parts of the event).
* A **comprehension** runs at most ``min(elements, budget)`` times; its
  elements are never all as large as the list, so the per-iteration cost is
  sampled for elements of 1/2, 1/4 ... of the list and summed with the
  elements' sizes adding up to the list's (a rigorous bound for costs that
  grow with the element). ``map`` and ``filter`` copy their growing result at
  every step, as cel-cpp does: over an event's list that is quadratic.

:func:`check_cost` raises :class:`ExpressionTooCostly` when a value can
exceed :data:`~.limits.MAX_VALUE_SIZE` or the cost :data:`~.limits.MAX_COST`,
naming the innermost node responsible and its line and column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from .functions import TIMESTAMP_ACCESSORS
from .limits import ITERATION_BUDGET, MAX_COST, MAX_EVENT_SIZE, MAX_EVENT_VALUES, MAX_VALUE_SIZE
from .parsetree import (
    Call,
    Comprehension,
    Const,
    CreateList,
    CreateMap,
    Ident,
    Node,
    ParsedExpression,
    ParseTreeError,
    Select,
    parse,
)

__all__ = ["Cost", "ExpressionTooCostly", "Value", "check_cost", "estimate"]

# Costs, in units of about a nanosecond of cel-cpp (measured on x86-64, cel-expr-python 0.1.3).
NODE: Final = 30  # evaluating one node
BYTE: Final = 1  # copying, comparing or scanning one character
COMPARE: Final = 20  # comparing one element of a list or map
ELEMENT: Final = 150  # building or copying one list or map element
CONVERT_BYTE: Final = 3  # converting one character between Python and CEL
CONVERT_VALUE: Final = 200  # converting one value (scalar, container, key) between Python and CEL
PY_CALL: Final = 1000  # calling one of pytracee's functions from CEL
PY_BYTE: Final = 10  # one character of work in one of pytracee's functions (parsing, decoding)
REGEX_BYTE: Final = 4  # one character of text matched by RE2
REGEX_COMPILE: Final = 100  # one character of a regular expression compiled
SEARCH_WIDTH: Final = 128  # characters a substring search compares at once (measured: 64 KiB in 32 KiB, 25 ms)
#: Stop estimating after this many node evaluations (an expression too intricate to bound).
MAX_ANALYSIS_STEPS: Final = 200_000

_BIG: Final = float(2**50)  # a stand-in accumulator size, to see whether a loop step carries it over


class ExpressionTooCostly(ValueError):
    """An expression's worst case exceeds a limit; ``line`` and ``column`` are within the expression."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        #: Which expression of a detector (``conditions[0]`` ...), set by :func:`check_cost`.
        self.where = where


@dataclass(frozen=True, slots=True)
class Value:
    """Upper bounds on a value: characters (``size``) and values (``count``); ``scalar`` for numbers and bools."""

    size: float
    count: float
    scalar: bool = False

    def __add__(self, other: Value) -> Value:
        return Value(self.size + other.size, self.count + other.count)

    def join(self, other: Value) -> Value:
        """The bound of either value."""
        return Value(max(self.size, other.size), max(self.count, other.count), self.scalar and other.scalar)


SCALAR: Final = Value(1, 1, scalar=True)
EVENT: Final = Value(MAX_EVENT_SIZE, MAX_EVENT_VALUES)


@dataclass(slots=True)
class Cost:
    """Work units, plus the ``getEventData`` calls by argument name (converted at each call)."""

    units: float = 0.0
    args: dict[str, float] = field(default_factory=dict)

    def __add__(self, other: Cost) -> Cost:
        args = dict(self.args)
        for name, calls in other.args.items():
            args[name] = args.get(name, 0.0) + calls
        return Cost(self.units + other.units, args)

    def scaled(self, factor: float) -> Cost:
        return Cost(self.units * factor, {name: calls * factor for name, calls in self.args.items()})

    def total(self, event_used: bool = False) -> float:
        """Units, with the argument conversions: the arguments are disjoint parts of one event,
        so at worst all the event is the most often fetched one."""
        fetches = max(self.args.values(), default=0.0) + (1 if event_used else 0)
        return self.units + fetches * _convert(EVENT)


def _convert(value: Value) -> float:
    return CONVERT_BYTE * value.size + CONVERT_VALUE * value.count


def _sum_each(
    samples: list[tuple[float, Cost]], n: float, combine: Callable[[float, float, float, float], float]
) -> Cost:
    """Componentwise :func:`_amortized` of sampled costs."""
    names = {name for _, cost in samples for name in cost.args}
    units = combine(n, *_line([(t, c.units) for t, c in samples]))
    args = {name: combine(n, *_line([(t, c.args.get(name, 0.0)) for t, c in samples])) for name in names}
    return Cost(units, args)


def _line(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """``(base, slope, whole)`` of a monotone function sampled at t = 1, 1/2, 1/4 ... (the last is the base)."""
    base = points[-1][1]
    slope = max(((value - base) / t for t, value in points), default=0.0)
    return base, slope, points[0][1]


def _amortized(n: float, base: float, slope: float, whole: float) -> float:
    """A bound on f(t_1) + ... + f(t_n) when t_1 + ... + t_n <= 2 (elements' sizes and counts add up
    to at most the list's): f(t) <= base + 2 * slope * t for t in (t_k/2, t_k]."""
    return min(n * whole, n * base + 4 * slope)


class _Estimator:
    """Walks one parse tree; :meth:`value` returns the bound on a node's value and its cost."""

    def __init__(self, parsed: ParsedExpression) -> None:
        self.parsed = parsed
        self.steps = 0
        self.event_used = False
        self._cache: dict[tuple[int, tuple[tuple[str, Value], ...]], tuple[Value, Cost]] = {}
        self._free: dict[int, frozenset[str]] = {}
        self._probing = 0  # > 0 while a loop step is evaluated with a stand-in accumulator

    # --- errors ---

    def fail(self, node: Node, message: str) -> ExpressionTooCostly:
        line, column = self.parsed.where(node)
        return ExpressionTooCostly(message, line, column)

    def describe(self, node: Node) -> str:
        if isinstance(node, Call):
            name = node.function
            if name.startswith("_") and name.endswith("_") and len(name) > 2:
                return f"'{name.strip('_').replace('_', ' ')}'"
            return f"{name}()"
        if isinstance(node, Comprehension):
            return f"{self.macro(node)}()"
        if isinstance(node, CreateList):
            return "a list literal"
        if isinstance(node, CreateMap):
            return "a map literal"
        return "this expression"

    def macro(self, node: Comprehension) -> str:
        if node.id in self.parsed.macros:
            return self.parsed.macros[node.id]
        init, step = node.accu_init, node.loop_step
        if isinstance(init, CreateList):
            if isinstance(step, Call) and step.function == "_?_:_" and len(step.args) == 3:
                added = step.args[1]
                if isinstance(added, Call) and len(added.args) == 2 and isinstance(added.args[1], CreateList):
                    kept = added.args[1].elements
                    if len(kept) == 1 and isinstance(kept[0], Ident) and kept[0].name == node.iter_var:
                        return "filter"
            return "map"
        if isinstance(init, Const) and isinstance(init.value, bool):
            return "all" if init.value else "exists"
        return "exists_one" if isinstance(init, Const) else "comprehension"

    # --- walking ---

    def value(self, node: Node, env: Mapping[str, Value]) -> tuple[Value, Cost]:
        free = self.free(node)
        key = (node.id, tuple(sorted((name, env[name]) for name in free if name in env)))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.steps += 1
        if self.steps > MAX_ANALYSIS_STEPS:
            raise self.fail(node, "too intricate to bound its cost (simplify it)")
        value, cost = self._evaluate(node, env)
        if self._probing:
            pass  # the stand-in accumulator is huge on purpose
        elif value.size > MAX_VALUE_SIZE:
            raise self.fail(
                node,
                f"{self.describe(node)} can build a value of {_count(value.size)} characters in the worst case "
                f"(limit {_count(MAX_VALUE_SIZE)}; event data is up to {_count(MAX_EVENT_SIZE)} characters)",
            )
        elif cost.total() > MAX_COST:
            raise self.fail(
                node,
                f"{self.describe(node)} costs about {cost.total():.2g} units in the worst case (limit {MAX_COST:.2g}, "
                f"about {MAX_COST / 1e6:g} ms of cel-cpp){self.hint(node)}",
            )
        if not self._probing:  # a probe's results were not checked against the limits
            self._cache[key] = (value, cost)
        return value, cost

    def hint(self, node: Node) -> str:
        if isinstance(node, Comprehension):
            steps = f"up to {ITERATION_BUDGET:,} steps over event data"
            if isinstance(node.accu_init, CreateList):
                return (
                    f": {steps}, and {self.macro(node)} copies its growing result list at every step (use exists/all)"
                )
            return f": {steps}"
        return ""

    def free(self, node: Node) -> frozenset[str]:
        """The identifiers a node reads (cached per node)."""
        names = self._free.get(node.id)
        if names is None:
            if isinstance(node, Ident):
                names = frozenset((node.name,))
            elif isinstance(node, Comprehension):
                inner = frozenset().union(*(self.free(child) for child in _children(node)))
                names = inner - {node.iter_var, node.iter_var2, node.accu_var}
            else:
                names = frozenset().union(*(self.free(child) for child in _children(node)))
            self._free[node.id] = names
        return names

    def _evaluate(self, node: Node, env: Mapping[str, Value]) -> tuple[Value, Cost]:
        if isinstance(node, Const):
            if isinstance(node.value, (str, bytes)):
                return Value(len(node.value), 1), Cost(NODE)
            return SCALAR, Cost(NODE)
        if isinstance(node, Ident):
            if node.name in env:
                return env[node.name], Cost(NODE)
            if node.name == "event":
                self.event_used = True
                return EVENT, Cost(NODE)
            return SCALAR, Cost(NODE)  # a type name such as int
        if isinstance(node, Select):
            operand, cost = self.value(node.operand, env)
            lookup = Cost(NODE + BYTE * len(node.field))
            return (SCALAR if node.test_only else Value(operand.size, operand.count)), cost + lookup
        if isinstance(node, CreateList):
            return self._container([self.value(e, env) for e in node.elements], len(node.elements))
        if isinstance(node, CreateMap):
            parts = [self.value(part, env) for entry in node.entries for part in entry]
            return self._container(parts, len(node.entries))
        if isinstance(node, Comprehension):
            return self._comprehension(node, env)
        operands = [self.value(arg, env) for arg in node.operands]
        cost = Cost(NODE)
        for _, operand_cost in operands:
            cost = cost + operand_cost
        value, work = _call(node, [v for v, _ in operands])
        return value, cost + work

    def _container(self, parts: list[tuple[Value, Cost]], elements: int) -> tuple[Value, Cost]:
        value, cost = Value(0, 1), Cost(NODE + ELEMENT * elements)
        for part, part_cost in parts:
            value, cost = value + part, cost + part_cost
        return value, cost

    def _comprehension(self, node: Comprehension, env: Mapping[str, Value]) -> tuple[Value, Cost]:
        whole, range_cost = self.value(node.iter_range, env)
        init, init_cost = self.value(node.accu_init, env)
        n = 0.0 if whole.scalar else min(whole.count, ITERATION_BUDGET)
        fractions = _fractions(whole)

        def element(t: float) -> Value:
            return Value(math.ceil(t * whole.size), max(1.0, math.ceil(t * whole.count)))

        def bind(t: float, accu: Value) -> dict[str, Value]:
            scope = dict(env)
            scope[node.accu_var] = accu
            for var in (node.iter_var, node.iter_var2):
                if var:
                    scope[var] = element(t)
            return scope

        if init.scalar:  # all, exists, exists_one: a bool or a counter (CEL's accumulator keeps its type)
            accu = SCALAR
        else:
            self._probing += 1
            try:
                carried, _ = self.value(node.loop_step, bind(1.0, Value(_BIG, _BIG)))
            finally:
                self._probing -= 1
            if carried.size >= _BIG:  # map/filter: the result grows at every step
                growth = [(t, self.value(node.loop_step, bind(t, Value(0, 0)))[0]) for t in fractions]
                if carried.size > _BIG + growth[0][1].size or carried.count > _BIG + growth[0][1].count:
                    raise self.fail(node, f"{self.describe(node)}: its result grows faster than one element a step")
                size = _amortized(n, *_line([(t, g.size) for t, g in growth]))
                count = _amortized(n, *_line([(t, g.count) for t, g in growth]))
                accu = Value(init.size + size, init.count + count)
            else:
                accu = init.join(self.value(node.loop_step, bind(1.0, init))[0])
        samples = []
        for t in fractions:
            scope = bind(t, accu)
            samples.append((t, self.value(node.loop_condition, scope)[1] + self.value(node.loop_step, scope)[1]))
        steps = _sum_each(samples, n, _amortized)
        result_scope = dict(env)
        result_scope[node.accu_var] = accu
        result, result_cost = self.value(node.result, result_scope)
        return result, range_cost + init_cost + steps + result_cost + Cost(NODE * (n + 1))


def _fractions(whole: Value) -> list[float]:
    """1, 1/2, 1/4 ... down to an element of one character and one value."""
    largest = max(whole.size, whole.count, 1.0)
    steps = min(math.ceil(math.log2(largest)), 62)
    return [2.0**-k for k in range(steps + 1)]


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Select):
        return (node.operand,)
    if isinstance(node, Call):
        return node.operands
    if isinstance(node, CreateList):
        return node.elements
    if isinstance(node, CreateMap):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, Comprehension):
        return (node.iter_range, node.accu_init, node.loop_condition, node.loop_step, node.result)
    return ()


# --- functions and operators ------------------------------------------------------------------------

_ARITHMETIC: Final = frozenset({"_-_", "_*_", "_/_", "_%_", "-_"})
_BOOLEAN: Final = frozenset({"_&&_", "_||_", "!_", "@not_strictly_false", "not_strictly_false"})
_COMPARISONS: Final = frozenset({"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"})
_CONVERSIONS: Final = TIMESTAMP_ACCESSORS | frozenset(
    {
        "int",
        "uint",
        "double",
        "bool",
        "type",
        "timestamp",
        "duration",
    }
)
#: pytracee's functions that read or parse a value and return a scalar (see :mod:`.functions`).
_PARSERS: Final = frozenset(
    {
        "openFlags",
        "isFileWrite",
        "isFileRead",
        "ptraceRequest",
        "memProtAlert",
        "isMemoryPath",
        "isElf",
    }
)


def _call(node: Call, args: list[Value]) -> tuple[Value, Cost]:
    """The value of a call and its own work (its operands' costs are added by the caller)."""
    name = node.function
    a = args[0] if args else SCALAR
    b = args[1] if len(args) > 1 else SCALAR
    if name in _BOOLEAN:
        return SCALAR, Cost()
    if name in _ARITHMETIC:
        return SCALAR, Cost()
    if name in _COMPARISONS:
        return SCALAR, Cost(BYTE * min(a.size, b.size) + COMPARE * min(a.count, b.count))
    if name == "_?_:_":
        return b.join(args[2]), Cost()
    if name == "_+_":
        if a.scalar or b.scalar:
            return SCALAR, Cost()
        result = a + b
        return result, Cost(BYTE * result.size + ELEMENT * result.count)
    if name == "_[_]":
        return Value(a.size, a.count), Cost(BYTE * b.size)
    if name in ("@in", "_in_"):
        return SCALAR, Cost(BYTE * (a.size + b.size) + COMPARE * b.count)
    if name == "size":
        return SCALAR, Cost(BYTE * a.size)
    if name in ("contains", "startsWith", "endsWith"):
        search = a.size * math.ceil(min(a.size, b.size) / SEARCH_WIDTH) if name == "contains" else b.size
        return SCALAR, Cost(BYTE * (a.size + search))
    if name == "matches":
        return SCALAR, Cost(REGEX_BYTE * a.size * max(1, math.ceil(b.size / SEARCH_WIDTH)) + REGEX_COMPILE * b.size)
    if name in ("string", "bytes", "dyn"):
        return Value(max(a.size, 32), a.count), Cost(BYTE * a.size)
    if name in _CONVERSIONS:
        return SCALAR, Cost(BYTE * a.size)
    return _pytracee_function(node, args)


def _pytracee_function(node: Call, args: list[Value]) -> tuple[Value, Cost]:
    """pytracee's functions: a call into Python, the arguments and the result converted."""
    name = node.function
    a = args[0] if args else SCALAR
    b = args[1] if len(args) > 1 else Value(0, 1)
    call = Cost(PY_CALL + sum(_convert(arg) for arg in args))
    if name in ("getEventData", "getData"):
        literal = node.operands[0] if node.operands else None
        if isinstance(literal, Const) and isinstance(literal.value, str):
            return EVENT, Cost(PY_CALL, {literal.value: 1.0})
        return EVENT, call + Cost(_convert(EVENT))
    if name == "hasData":
        return SCALAR, call
    if name == "split":
        pieces = a.size + 1
        result = Value(a.size, pieces + 1)
    elif name == "join":
        result = Value(a.size + a.count * b.size, 1)
    elif name == "replace":
        old = node.operands[1] if len(node.operands) > 1 else None
        new = args[2] if len(args) > 2 else Value(0, 1)
        if isinstance(old, Const) and isinstance(old.value, str) and old.value:
            grown = math.floor(a.size / len(old.value)) * max(0.0, new.size - len(old.value))
        else:  # an empty old string inserts new at every position
            grown = (a.size + 1) * new.size
        result = Value(a.size + grown, 1)
    elif name in ("upper", "lower"):
        result = Value(3 * a.size, 1)  # a few characters grow when their case changes (ß -> SS)
    elif name in ("trim", "basename", "dirname", "sockaddrIp", "sockaddrPort", "sockaddrPath"):
        result = Value(a.size, 1)
    elif name in _PARSERS:
        return SCALAR, call + Cost(PY_BYTE * a.size)
    else:  # a function this table does not know: linear in its arguments
        result = Value(sum(arg.size for arg in args) + 32, sum(arg.count for arg in args) + 1)
    return result, call + Cost(PY_BYTE * (a.size + result.size) + _convert(result))


def _count(number: float) -> str:
    return f"{number:,.0f}" if number < 1e15 else f"{number:.2g}"


# --- the entry points --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """The worst case of one expression: its cost in units and the largest value it can build."""

    cost: float
    size: float


def estimate(text: str) -> Estimate:
    """The worst-case cost and value size of ``text``.

    :raises ExpressionTooCostly: when either exceeds its limit, naming the node responsible,
        or when the expression does not parse.
    """
    try:
        parsed = parse(text)
    except ParseTreeError as exc:
        raise ExpressionTooCostly(f"cannot estimate its cost: {exc}") from None
    estimator = _Estimator(parsed)
    value, cost = estimator.value(parsed.root, {})
    total = cost.total(estimator.event_used)
    if total > MAX_COST:
        raise ExpressionTooCostly(
            f"costs about {total:.2g} units in the worst case (limit {MAX_COST:.2g}, about {MAX_COST / 1e6:g} ms "
            f"of cel-cpp), converting event data of up to {_count(MAX_EVENT_SIZE)} characters included",
            *parsed.where(parsed.root),
        )
    return Estimate(total, value.size)


def check_cost(texts: Mapping[str, str]) -> dict[str, Estimate]:
    """Estimate every expression of a detector (``where -> text``); their sum is one event's worst case.

    :raises ExpressionTooCostly: for one expression over a limit, or for the sum; its ``where``
        names the expression (for the sum: the most costly one).
    """
    estimates: dict[str, Estimate] = {}
    for where, text in texts.items():
        try:
            estimates[where] = estimate(text)
        except ExpressionTooCostly as exc:
            exc.where = where
            raise
    total = sum(e.cost for e in estimates.values())
    if total > MAX_COST and estimates:
        worst = max(estimates, key=lambda w: estimates[w].cost)
        raise ExpressionTooCostly(
            f"the detector's expressions together cost about {total:.2g} units for one event in the worst case "
            f"(limit {MAX_COST:.2g}); the most costly is {worst} ({estimates[worst].cost:.2g})",
            where=worst,
        )
    return estimates
