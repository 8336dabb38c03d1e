"""Conditions decided in Python when the answer is certain, before a CEL engine is asked.

Calling into a CEL engine costs several microseconds per condition (an
activation, the call, converting the event and every ``getEventData`` result),
while most conditions are simple: ``ptraceRequest(getEventData("request")) ==
0``, ``getEventData("remote_addr").sa_family in ["AF_INET", "AF_INET6"]``.
:func:`compile_shortcut` turns a condition's parse tree (:mod:`.parsetree`)
into a Python function of the event that answers ``True``, ``False`` or
``None``: ``None`` means "not certain here", and the engine evaluates the
condition as before. A ``True`` or ``False`` is given only where CEL's answer
is provably the same and without an error, so findings, evaluation errors and
their messages are what the engine alone gives:

* Values are handled by their CEL type, told from the Python value as both
  engines convert it: ``str`` (string), ``bool``, ``int`` within 64 bits
  (``int``, or ``uint`` above ``int``'s range), ``None`` (null), ``dict``
  (map), ``list``. Doubles, bytes, durations and anything else are never
  decided.
* Operations are decided only where CEL defines them without an error and
  the result is the same on both backends: ``==``/``!=``/``in`` between
  values of one scalar type (CEL's cross-type equality, which the backends
  treat differently, is left to them), ``<``/``<=``/``>``/``>=`` on ints or
  strings, ``!``, ``? :`` on a bool, ``size`` of a string (code points), list
  or map, ``startsWith``/``endsWith``/``contains`` on strings, ``int`` of an
  int, ``string`` of a string, ``bool`` of a bool, ``m.f``, ``has(m.f)``,
  ``m["k"]`` and ``l[i]`` where the key or index exists. ``matches`` (RE2 is
  not Python's ``re``), arithmetic, and comprehensions are left to the engine.
* pytracee's functions (:mod:`.functions`) but those building strings or lists
  (``split``, ``join``, ``replace``, ``upper``, ``lower``: the engine's work, within
  its time budget) run their own implementation, on
  arguments of exactly a declared overload's types (bytes, which cel-cpp hands
  over as ``bytearray``, excluded) and with a result of the declared type
  (with no NUL character, at which cel-expr-python would cut a string); an
  implementation that raises is left to the engine (which reports it).
* The caller decides nothing for an event that may hold a NUL character
  (:attr:`.boundary.EventGate.decidable`).
* ``&&`` and ``||`` are CEL's commutative operators: ``false`` decides an
  ``&&`` and ``true`` an ``||`` whatever the other operands are, as CEL
  absorbs their errors. An operand containing a comprehension is never
  passed over: past the iteration budget the engines stop the whole
  evaluation, which no operator absorbs.

A ``None`` costs the shortcut's work on top of the engine's; the rules shipped
in ``rules/cel/`` are decided here on every event of their common cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from .functions import FUNCTIONS
from .parsetree import Call, Comprehension, Const, CreateList, Ident, Node, ParsedExpression, Select

__all__ = ["UNKNOWN", "Decision", "compile_shortcut", "kind"]


class _Unknown:
    """Not certain here: the engine decides."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


#: The value of a node that is not decided in Python.
UNKNOWN: Final = _Unknown()

#: ``(event, arguments) -> value or UNKNOWN``: one compiled node.
Program = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
#: ``(event, arguments) -> True, False, or None when the engine must decide``.
Decision = Callable[[Mapping[str, Any], Mapping[str, Any]], "bool | None"]

_INT_MIN, _INT_MAX, _UINT_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_SCALARS: Final = frozenset({"null", "bool", "int", "uint", "string"})
_DATA_FUNCTIONS: Final = frozenset({"getEventData", "getData", "hasData"})
#: Functions that build strings or lists as large as the limits allow: left to the engine, whose
#: time budget they count against (a Python decision only ever costs a few scans of the event).
_BUILDERS: Final = frozenset({"split", "join", "replace", "upper", "lower"})


def kind(value: Any) -> str | None:
    """The CEL type of a Python value as the engines convert it, or None for one never decided here."""
    cls = type(value)
    if cls is str:
        return "string"
    if cls is bool:
        return "bool"
    if cls is int:
        if _INT_MIN <= value <= _INT_MAX:
            return "int"
        return "uint" if 0 <= value <= _UINT_MAX else None
    if value is None:
        return "null"
    if cls is dict:
        return "map"
    if cls is list:
        return "list"
    return None


def _json_shaped(value: Any, depth: int = 0) -> bool:
    """Whether a list or map goes between Python and CEL as it is: no bytes, no NUL in a string, anywhere."""
    cls = type(value)
    if cls is str:
        return "\x00" not in value
    if cls is bool or cls is float or value is None:
        return True
    if cls is int:
        return bool(_INT_MIN <= value <= _UINT_MAX)
    if depth > 64:
        return False
    if cls is dict:
        return all(type(k) is str and _json_shaped(v, depth + 1) for k, v in value.items())
    if cls is list:
        return all(_json_shaped(v, depth + 1) for v in value)
    return False


_VARIABLE: Final = object()  # "not a constant"


class _Compiled(NamedTuple):
    """A compiled node: its program (None: never decided here), whether it contains a comprehension,
    and its value when it is a constant."""

    run: Program | None
    opaque: bool = False
    constant: Any = _VARIABLE


_NEVER: Final = _Compiled(None)


def compile_shortcut(parsed: ParsedExpression, bindings: Mapping[str, Any] | None = None) -> Decision | None:
    """The Python decision of a condition, or None when no event could be decided here.

    :param parsed: the condition's parse tree.
    :param bindings: values of other variables than ``event`` (a detector's ``params``),
        as plain JSON values.
    """
    compiled = _Compiler(bindings or {}).node(parsed.root)
    run = compiled.run
    if run is None or compiled.constant is not _VARIABLE:
        return None  # a constant condition: left to the engine, which may say it is no bool

    def decide(raw: Mapping[str, Any], args: Mapping[str, Any]) -> bool | None:
        value = run(raw, args)
        if value is True or value is False:
            return value
        return None

    return decide


def _unknown(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
    return UNKNOWN


def _constant(value: Any) -> Program:
    return lambda raw, args: value


class _Compiler:
    def __init__(self, bindings: Mapping[str, Any]) -> None:
        self.bindings = bindings

    def node(self, node: Node) -> _Compiled:
        if isinstance(node, Const):
            return self.const(node)
        if isinstance(node, Ident):
            return self.ident(node)
        if isinstance(node, Select):
            return self.select(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, CreateList):
            return self.create_list(node)
        if isinstance(node, Comprehension):
            return _Compiled(None, opaque=True)
        return _NEVER  # map literals

    def const(self, node: Const) -> _Compiled:
        value = node.value
        if node.unsigned or kind(value) not in _SCALARS:
            return _NEVER  # a 3u literal would pass for an int here; doubles and bytes are not decided
        return _Compiled(_constant(value), constant=value)

    def ident(self, node: Ident) -> _Compiled:
        if node.name == "event":
            return _Compiled(lambda raw, args: raw)
        if node.name in self.bindings:
            value = self.bindings[node.name]
            return _Compiled(_constant(value), constant=value)
        return _NEVER

    def select(self, node: Select) -> _Compiled:
        operand = self.node(node.operand)
        run = operand.run
        if run is None:
            return _Compiled(None, operand.opaque)
        name = node.field
        if type(operand.constant) is dict and not node.test_only and name in operand.constant:
            value = operand.constant[name]  # params.shells
            return _Compiled(_constant(value), constant=value)
        if isinstance(node.operand, Ident) and node.operand.name == "event":  # the event is a dict
            if node.test_only:
                return _Compiled(lambda raw, args: name in raw)
            return _Compiled(lambda raw, args: raw.get(name, UNKNOWN))
        if node.test_only:

            def has(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
                value = run(raw, args)
                return name in value if type(value) is dict else UNKNOWN

            return _Compiled(has)

        def field(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
            value = run(raw, args)
            if type(value) is dict:
                return value.get(name, UNKNOWN)
            return UNKNOWN

        return _Compiled(field)

    def create_list(self, node: CreateList) -> _Compiled:
        elements = [self.node(e) for e in node.elements]
        opaque = any(e.opaque for e in elements)
        runs = [e.run for e in elements]
        if opaque or any(r is None for r in runs):
            return _Compiled(None, opaque)
        if all(e.constant is not _VARIABLE for e in elements):
            values = [e.constant for e in elements]
            return _Compiled(_constant(values), constant=values)
        return _Compiled(_strict([r for r in runs if r is not None], lambda *values: list(values)))

    def call(self, node: Call) -> _Compiled:
        name = node.function
        operands = [self.node(o) for o in node.operands]
        opaque = any(o.opaque for o in operands)
        if name in ("_&&_", "_||_"):
            if opaque:
                return _Compiled(None, True)
            return _Compiled(_logical([o.run or _unknown for o in operands], name == "_&&_"))
        if name == "_?_:_":
            if opaque or operands[0].run is None:
                return _Compiled(None, opaque)
            return _Compiled(_conditional(operands[0].run, operands[1].run or _unknown, operands[2].run or _unknown))
        runs = [o.run for o in operands]
        if opaque or any(r is None for r in runs):
            return _Compiled(None, opaque)
        programs = [r for r in runs if r is not None]
        if name in _DATA_FUNCTIONS and node.target is None and len(programs) == 1:
            return _Compiled(_argument(node.args[0], programs[0], name == "hasData"))
        special = _with_constant(name, operands)
        if special is not None:
            return _Compiled(special)
        operation = _operation(name, node.target is not None, len(programs))
        if operation is None:
            return _NEVER
        return _Compiled(_strict(programs, operation))


def _kind_test(k: str) -> Callable[[Any], bool]:
    """Whether a value is of the scalar kind ``k`` (:func:`kind`, faster)."""
    if k == "string":
        return lambda x: type(x) is str
    if k == "bool":
        return lambda x: type(x) is bool
    if k == "null":
        return lambda x: x is None
    if k == "int":
        return lambda x: type(x) is int and _INT_MIN <= x <= _INT_MAX
    return lambda x: type(x) is int and _INT_MAX < x <= _UINT_MAX


def _with_constant(name: str, operands: list[_Compiled]) -> Program | None:
    """``x == c``, ``x != c`` and ``x in [c, ...]`` with constants: the kind of ``x`` checked once."""
    if len(operands) != 2:
        return None
    (left, right) = operands
    if name in ("_==_", "_!=_"):
        if left.constant is not _VARIABLE and right.constant is _VARIABLE:
            left, right = right, left
        value, operand = right.constant, left.run
        k = kind(value)
        if value is _VARIABLE or k is None or k not in _SCALARS or operand is None or left.constant is not _VARIABLE:
            return None
        same = _kind_test(k)
        equal = name == "_==_"
        run: Program = operand

        def compare(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
            x = run(raw, args)
            if same(x):
                return (x == value) is equal
            return UNKNOWN

        return compare
    if name in ("@in", "_in_") and type(right.constant) is list and right.constant and left.run is not None:
        kinds = {kind(e) for e in right.constant}
        (k,) = kinds if len(kinds) == 1 else (None,)
        if k is None or k not in _SCALARS:
            return None
        member, members = _kind_test(k), frozenset(right.constant)
        run = left.run

        def contains(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
            x = run(raw, args)
            if member(x):
                return x in members
            return UNKNOWN

        return contains
    return None


def _strict(runs: list[Program], operation: Callable[..., Any]) -> Program:
    """An operation of values, UNKNOWN when any operand is."""
    if len(runs) == 1:
        (a,) = runs

        def one(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
            x = a(raw, args)
            return UNKNOWN if x is UNKNOWN else operation(x)

        return one
    if len(runs) == 2:
        a, b = runs

        def two(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
            x = a(raw, args)
            if x is UNKNOWN:
                return UNKNOWN
            y = b(raw, args)
            return UNKNOWN if y is UNKNOWN else operation(x, y)

        return two

    def many(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
        values = []
        for run in runs:
            value = run(raw, args)
            if value is UNKNOWN:
                return UNKNOWN
            values.append(value)
        return operation(*values)

    return many


def _logical(runs: list[Program], conjunction: bool) -> Program:
    """CEL's ``&&`` (``||``): false (true) if any operand is, whatever the others; true (false) if all are."""
    decisive = not conjunction

    def logical(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
        undecided = False
        for run in runs:
            value = run(raw, args)
            if value is decisive:
                return decisive
            if value is not conjunction:
                undecided = True
        return UNKNOWN if undecided else conjunction

    return logical


def _conditional(test: Program, then: Program, otherwise: Program) -> Program:
    def conditional(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
        value = test(raw, args)
        if value is True:
            return then(raw, args)
        if value is False:
            return otherwise(raw, args)
        return UNKNOWN

    return conditional


def _argument(node: Node, run: Program, presence: bool) -> Program:
    """``getEventData(name)`` / ``hasData(name)``: the event's argument (null when absent) / whether it has it."""
    if isinstance(node, Const):
        name = node.value
        if type(name) is not str:
            return _unknown
        if presence:
            return lambda raw, args: name in args
        return lambda raw, args: args.get(name)

    def argument(raw: Mapping[str, Any], args: Mapping[str, Any]) -> Any:
        name = run(raw, args)
        if type(name) is not str:
            return UNKNOWN
        return name in args if presence else args.get(name)

    return argument


# --- operations ------------------------------------------------------------------------------


def _same_scalars(x: Any, y: Any) -> bool:
    k = kind(x)
    return k is not None and k in _SCALARS and kind(y) == k


def _equal(x: Any, y: Any) -> Any:
    return x == y if _same_scalars(x, y) else UNKNOWN


def _not_equal(x: Any, y: Any) -> Any:
    return x != y if _same_scalars(x, y) else UNKNOWN


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def order(x: Any, y: Any) -> Any:
        k = kind(x)
        return compare(x, y) if k in ("int", "uint", "string") and kind(y) == k else UNKNOWN

    return order


def _in(x: Any, container: Any) -> Any:
    k = kind(x)
    if type(container) is list:
        if k not in _SCALARS or any(kind(e) != k for e in container):
            return UNKNOWN
        return x in container
    if type(container) is dict and k == "string":
        return x in container
    return UNKNOWN


def _not(x: Any) -> Any:
    return (not x) if type(x) is bool else UNKNOWN


def _size(x: Any) -> Any:
    cls = type(x)
    return len(x) if cls is str or cls is list or cls is dict else UNKNOWN


def _string_test(test: Callable[[str, str], bool]) -> Callable[[Any, Any], Any]:
    def string_test(x: Any, y: Any) -> Any:
        return test(x, y) if type(x) is str and type(y) is str else UNKNOWN

    return string_test


def _index(container: Any, key: Any) -> Any:
    if type(container) is list and kind(key) == "int":
        return container[key] if 0 <= key < len(container) else UNKNOWN
    if type(container) is dict and type(key) is str:
        return container.get(key, UNKNOWN)
    return UNKNOWN


def _identity(expected: str) -> Callable[[Any], Any]:
    return lambda x: x if kind(x) == expected else UNKNOWN


_OPERATIONS: Final[Mapping[tuple[str, int], Callable[..., Any]]] = {
    ("_==_", 2): _equal,
    ("_!=_", 2): _not_equal,
    ("_<_", 2): _ordered(lambda x, y: x < y),
    ("_<=_", 2): _ordered(lambda x, y: x <= y),
    ("_>_", 2): _ordered(lambda x, y: x > y),
    ("_>=_", 2): _ordered(lambda x, y: x >= y),
    ("@in", 2): _in,
    ("_in_", 2): _in,
    ("!_", 1): _not,
    ("_[_]", 2): _index,
    ("size", 1): _size,
    ("int", 1): _identity("int"),
    ("string", 1): _identity("string"),
    ("bool", 1): _identity("bool"),
}
_METHODS: Final[Mapping[tuple[str, int], Callable[..., Any]]] = {
    ("size", 1): _size,
    ("startsWith", 2): _string_test(str.startswith),
    ("endsWith", 2): _string_test(str.endswith),
    ("contains", 2): _string_test(str.__contains__),
}


def _operation(name: str, method: bool, arity: int) -> Callable[..., Any] | None:
    """The Python operation of a call (the target first for a method), or None."""
    operation = (_METHODS if method else _OPERATIONS).get((name, arity))
    if operation is not None:
        return operation
    function = FUNCTIONS.get(name)
    if function is None or name in _BUILDERS or (method and not function.member):
        return None
    if function.needs_slot:
        return None  # the data functions are compiled by _Compiler.call
    # values of kind bytes, double or dyn are never decided, so those overloads never match
    overloads = {params: result for params, result in function.overloads if len(params) == arity}
    return _function(function.impl, overloads) if overloads else None


def _function(impl: Callable[..., Any], overloads: Mapping[tuple[str, ...], str]) -> Callable[..., Any]:
    """One of pytracee's functions on exactly a declared overload's argument types."""

    def call(*values: Any) -> Any:
        kinds = tuple(kind(v) for v in values)
        result_type = overloads.get(kinds)  # type: ignore[arg-type] # None never matches
        if result_type is None:
            return UNKNOWN
        for k, v in zip(kinds, values, strict=True):
            if k in ("list", "map") and not _json_shaped(v):
                return UNKNOWN
        try:
            result = impl(*values)
        except Exception:  # noqa: BLE001 - the engine reports it as the evaluation error it is
            return UNKNOWN
        return result if _returns(result, result_type) else UNKNOWN

    return call


def _returns(result: Any, result_type: str) -> bool:
    """Whether ``result`` is what CEL gets from a function declared to return ``result_type``."""
    k = kind(result)
    if result_type == "list":
        return k == "list" and _json_shaped(result)
    if k == "string":  # cel-expr-python would cut it at a NUL
        return result_type == "string" and "\x00" not in result
    return k == result_type
