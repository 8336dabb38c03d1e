"""Guards: what a Rego signature's leading conditions rule out, decided without the Rego engine.

Evaluating ``tracee_match`` in regorus costs several microseconds per rule
and event even when the rule's first conditions fail (``input.eventName ==
"..."``, a path prefix), plus a round trip to the worker. Most events a Rego
signature selects fail those first conditions. So each signature file is
analysed once, at load (in the worker, from regorus's AST), into a
:class:`Program`: for every body of ``tracee_match``, the statements at its
start that this module understands, up to the first one it does not. Per
event, :meth:`Guard.may_match` runs them on the event's JSON (as a dict) and
answers ``False`` only when **every** body certainly fails, with no
statement before the failing one able to raise an error; then
``tracee_match`` is undefined and the engine is not asked. In every other
case (a body passes, or reaches a statement not understood, or meets a value
whose Rego semantics would need the engine: a float, a non-string argument
to ``startswith``, an argument given twice ...) the engine evaluates the rule
as before. A guard never decides that a rule matches.

Understood statements (``v`` a value below, ``c`` a constant string, integer,
boolean or null): ``x := v``; ``some x in v`` over an array; ``v == v``,
``v != v``; ``v in {c, ...}`` / ``[c, ...]``; ``is_string(v)`` and the other
type tests; ``startswith``/``endswith``/``contains`` on two values; a value
alone (true unless undefined or false); ``not`` of any of these;
``regex.match(c, v)`` (only to rule out strings lacking the pattern's leading
literal text, for patterns the engine accepts). Values: ``input.a.b``, a
local variable bound by an understood statement, a constant, and
``helpers.get_tracee_argument(c)`` of pytracee's own helper package.

A rule gets no guard (it is always evaluated) when ``tracee_match`` has a
``default``, an ``else``, a partial (set or object) or function definition,
or when the file shadows a name the guard relies on (a rule or import named
like a built-in, ``helpers`` imported under another name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import MalformedEventError
from ..events import Event

__all__ = ["UNKNOWN", "GroupGuard", "Guard", "Program", "compile_program", "regex_literal"]

#: One body: a tuple of statements; ``(STOP,)`` last when the rest was not understood.
Program = tuple[tuple[tuple[Any, ...], ...], ...]

STOP: Final = "stop"
_UNDEF: Final = object()


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


#: A value or outcome only the Rego engine can decide.
UNKNOWN: Final = _Unknown()

_TYPE_TESTS: Final = {
    "is_string": lambda v: type(v) is str,
    "is_number": lambda v: type(v) is int or type(v) is float,
    "is_array": lambda v: type(v) is list,
    "is_object": lambda v: type(v) is dict,
    "is_boolean": lambda v: type(v) is bool,
    "is_null": lambda v: v is None,
}
_STRING_TESTS: Final = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": str.__contains__,
}
#: Names the guard gives a meaning to: a file defining or importing one of them gets no guard.
_RESERVED: Final = frozenset({*_TYPE_TESTS, *_STRING_TESTS, "regex", "helpers", "input", "data"})
_HELPERS: Final = ("data", "tracee", "helpers")
_ARGUMENT_HELPER: Final = "get_tracee_argument"
_ELF_HELPER: Final = "is_elf_file"
_ELF_MAGIC: Final = (127, 69, 76, 70)
#: Integers compared exactly; beyond this an engine may hold them as doubles.
_EXACT_INT: Final = 1 << 53
#: Characters that stand for themselves in every regex dialect the engines use (RE2, Rust regex).
_LITERAL_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-:@%=,~<>!'\";& ")
_QUANTIFIERS: Final = frozenset("?*+{")


class _NoGuard(Exception):
    """The rule as a whole cannot be guarded."""


class _Stop(Exception):
    """A statement not understood: the body is guarded up to here."""


# --- compiling (in the worker, from regorus's AST) ---------------------------------------------


def compile_program(
    ast: Mapping[str, Any], rule_names: Any, rule: str, regex_ok: Callable[[str], bool]
) -> Program | None:
    """The guard program of ``rule`` in a module's regorus AST, or ``None`` when it cannot be guarded.

    :param rule_names: the names of the module's rules (a file defining a reserved name gets no guard).
    :param regex_ok: whether the evaluating engine accepts a regex pattern (an invalid one is an error).
    """
    if any(name in _RESERVED for name in rule_names):
        return None
    try:
        helpers = _imports(ast.get("imports") or ())
        bodies: list[tuple[tuple[Any, ...], ...]] = []
        found = False
        for entry in ast.get("rules") or ():
            kind, node = next(iter(entry.items()))
            head = node.get("refr") if kind == "Default" else _head_ref(node.get("head"))
            if _root(head) != rule:
                continue
            found = True
            if kind != "Spec" or not _is_plain_head(node.get("head"), rule):
                return None
            for body in node.get("bodies") or ():
                if body.get("is_else"):
                    return None
                bodies.append(_Compiler(helpers, regex_ok).body(body["query"].get("stmts") or ()))
        return tuple(bodies) if found and bodies else None
    except _NoGuard:
        return None


def _imports(imports: Any) -> bool:
    """Whether ``helpers`` names pytracee's helper package; refuses imports that shadow reserved names."""
    helpers = False
    for imp in imports:
        path = _path(imp.get("refr"))
        if path is None or imp.get("as") is not None:
            raise _NoGuard  # an alias (its name is not in the AST) may shadow anything
        if path == ("rego", "v1") or path[:2] == ("future", "keywords"):
            continue
        if path[-1] in _RESERVED:
            if path != _HELPERS:
                raise _NoGuard
            helpers = True
    return helpers


def _head_ref(head: Any) -> Any:
    if not isinstance(head, dict) or len(head) != 1:
        return None
    (body,) = head.values()
    return body.get("refr") if isinstance(body, dict) else None


def _is_plain_head(head: Any, rule: str) -> bool:
    """``rule := v if ...`` or ``rule if ...`` (a complete rule), not a set, object or function."""
    if not isinstance(head, dict) or set(head) != {"Compr"}:
        return False
    refr = head["Compr"].get("refr")
    return isinstance(refr, dict) and set(refr) == {"Var"} and refr["Var"].get("value") == rule


def _root(ref: Any) -> str | None:
    while isinstance(ref, dict) and len(ref) == 1:
        kind, node = next(iter(ref.items()))
        if kind == "Var":
            return str(node.get("value"))
        if kind in ("RefDot", "RefBrack"):
            ref = node.get("refr")
            continue
        return None
    return None


def _path(ref: Any) -> tuple[str, ...] | None:
    """``a.b.c`` as ``("a", "b", "c")``; ``None`` for anything else."""
    if not isinstance(ref, dict) or len(ref) != 1:
        return None
    kind, node = next(iter(ref.items()))
    if kind == "Var":
        return (str(node.get("value")),)
    if kind == "RefDot":
        head = _path(node.get("refr"))
        field = node.get("field")
        name = field[-1] if isinstance(field, list) and field else field
        return None if head is None or not isinstance(name, str) else (*head, name)
    return None


class _Compiler:
    def __init__(self, helpers: bool, regex_ok: Callable[[str], bool]) -> None:
        self.helpers = helpers
        self.regex_ok = regex_ok
        self.bound: set[str] = set()

    def body(self, stmts: Any) -> tuple[tuple[Any, ...], ...]:
        out: list[tuple[Any, ...]] = []
        for stmt in stmts:
            try:
                if stmt.get("with_mods"):
                    raise _Stop
                out.append(self.statement(stmt.get("literal")))
            except _Stop:
                out.append((STOP,))
                break
        return tuple(out)

    def statement(self, literal: Any) -> tuple[Any, ...]:
        if not isinstance(literal, dict) or len(literal) != 1:
            raise _Stop
        kind, node = next(iter(literal.items()))
        if kind == "SomeIn":
            if node.get("key") is not None:
                raise _Stop
            var = self.new_var(node.get("value"))
            collection = self.value(node.get("collection"))
            self.bound.add(var)
            return ("some", var, collection)
        if kind == "NotExpr":
            return ("not", self.test(node.get("expr")))
        if kind == "Expr":
            expr = node.get("expr")
            if isinstance(expr, dict) and set(expr) == {"AssignExpr"}:
                assign = expr["AssignExpr"]
                if assign.get("op") != "ColEq":
                    raise _Stop
                value = self.value(assign.get("rhs"))
                var = self.new_var(assign.get("lhs"))
                self.bound.add(var)
                return ("assign", var, value)
            return ("test", self.test(expr))
        raise _Stop

    def new_var(self, node: Any) -> str:
        path = _path(node)
        if path is None or len(path) != 1 or path[0] in self.bound or path[0] in _RESERVED or path[0] == "_":
            raise _Stop
        return path[0]

    def test(self, expr: Any) -> tuple[Any, ...]:
        if not isinstance(expr, dict) or len(expr) != 1:
            raise _Stop
        kind, node = next(iter(expr.items()))
        if kind == "BoolExpr" and node.get("op") in ("Eq", "Ne"):
            return (node["op"].lower(), self.value(node.get("lhs")), self.value(node.get("rhs")))
        if kind == "Membership":
            if node.get("key") is not None:
                raise _Stop
            return ("in", self.value(node.get("value")), self.constants(node.get("collection")))
        if kind == "Call":
            name = _path(node.get("fcn"))
            params = node.get("params") or []
            if name is not None and len(name) == 1 and name[0] in _TYPE_TESTS and len(params) == 1:
                return ("type", name[0], self.value(params[0]))
            if name is not None and len(name) == 1 and name[0] in _STRING_TESTS and len(params) == 2:
                return ("string", name[0], self.value(params[0]), self.value(params[1]))
            helper = name == (*_HELPERS, _ELF_HELPER) or (self.helpers and name == ("helpers", _ELF_HELPER))
            if helper and len(params) == 1:
                return ("elf", self.value(params[0]))
            if name == ("regex", "match") and len(params) == 2:
                pattern = _constant(params[0])
                if type(pattern) is not str or not self.regex_ok(pattern):
                    raise _Stop
                literal = regex_literal(pattern)
                if not literal:
                    raise _Stop
                return ("regex", literal, self.value(params[1]))
        return ("truthy", self.value(expr))

    def value(self, node: Any) -> tuple[Any, ...]:
        constant = _constant(node)
        if constant is not _UNDEF:
            return ("const", constant)
        if not isinstance(node, dict) or len(node) != 1:
            raise _Stop
        kind, body = next(iter(node.items()))
        if kind == "Array":  # an array of constants (what `some x in [...]` walks)
            return ("const", list(self.constants(node)[1]))
        if kind == "Call":
            name = _path(body.get("fcn"))
            params = body.get("params") or []
            helper = name == (*_HELPERS, _ARGUMENT_HELPER) or (self.helpers and name == ("helpers", _ARGUMENT_HELPER))
            argument = _constant(params[0]) if len(params) == 1 else None
            if helper and type(argument) is str:
                return ("arg", argument)
            raise _Stop
        path = _path(node)
        if path is None:
            raise _Stop
        if path[0] == "input":
            return ("input", path[1:])
        if len(path) == 1 and path[0] in self.bound:
            return ("var", path[0])
        raise _Stop

    def constants(self, node: Any) -> tuple[Any, ...]:
        if not isinstance(node, dict) or len(node) != 1:
            raise _Stop
        kind, body = next(iter(node.items()))
        if kind not in ("Set", "Array"):
            raise _Stop
        items = tuple(_constant(item) for item in body.get("items") or ())
        if any(item is _UNDEF for item in items):
            raise _Stop
        return ("consts", items)


def _constant(node: Any) -> Any:
    """A scalar literal's value (exact integers only), else ``_UNDEF``."""
    if not isinstance(node, dict) or len(node) != 1:
        return _UNDEF
    kind, body = next(iter(node.items()))
    if not isinstance(body, dict):
        return _UNDEF
    if kind in ("String", "RawString") and type(body.get("value")) is str:
        return body["value"]
    if kind == "Number" and type(body.get("value")) is int and abs(body["value"]) < _EXACT_INT:
        return body["value"]
    if kind == "Bool" and type(body.get("value")) is bool:
        return body["value"]
    if kind == "Null":
        return None
    return _UNDEF


def regex_literal(pattern: str) -> str:
    """Text every match of ``pattern`` contains: its leading literal characters ('' when unsure)."""
    if "|" in pattern and "[" in pattern:
        return ""  # alternation next to classes: not worth parsing
    depth, i = 0, 0
    while i < len(pattern):  # an alternation outside any group: no common text
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth <= 0:
            return ""
        i += 1
    end = 0
    while end < len(pattern) and pattern[end] in _LITERAL_CHARS:
        end += 1
    if end < len(pattern) and pattern[end] in _QUANTIFIERS:
        end -= 1  # the last character may repeat zero times
    return pattern[: max(end, 0)]


# --- running (in the engine's process) ---------------------------------------------------------


class Guard:
    """A compiled :data:`Program`: :meth:`may_match` is ``False`` only when the rule is certainly undefined."""

    __slots__ = ("program",)

    def __init__(self, program: Program) -> None:
        self.program = program

    def may_match(self, raw: Mapping[str, Any], arguments: dict[str, Any]) -> bool:
        """Whether ``tracee_match`` may be defined for the event ``raw``.

        :param arguments: a per-event memo of argument lookups, shared by the guards of one event.
        """
        return any(_body(body, 0, raw, arguments, {}) is not False for body in self.program)

    def for_event(self, name: str) -> Guard | bool | None:
        """This guard for events called ``name`` only.

        Bodies starting with ``input.eventName == <another name>`` are left out and that
        test is dropped from the others. ``False``: no body is left (the rule is undefined
        for every such event); ``None``: a body is left with nothing to test (the rule
        must always be asked).
        """
        bodies = []
        for body in self.program:
            if body and _event_name_test(body[0]) is not None:
                if _event_name_test(body[0]) != name:
                    continue
                body = body[1:]
            if not body or body[0][0] == STOP:
                return None
            bodies.append(body)
        return Guard(tuple(bodies)) if bodies else False

    def reads(self) -> tuple[set[str], set[tuple[str, ...]]]:
        """The argument names and input paths the guard may read."""
        names: set[str] = set()
        paths: set[tuple[str, ...]] = set()
        for body in self.program:
            _collect_reads(body, names, paths)
        return names, paths


def _event_name_test(stmt: tuple[Any, ...]) -> str | None:
    """``c`` for a statement ``input.eventName == c`` (either way round), else ``None``."""
    if stmt[0] != "test" or stmt[1][0] != "eq":
        return None
    _, left, right = stmt[1]
    for a, b in ((left, right), (right, left)):
        if a == ("input", ("eventName",)) and b[0] == "const" and type(b[1]) is str:
            return str(b[1])
    return None


def _collect_reads(node: Any, names: set[str], paths: set[tuple[str, ...]]) -> None:
    if type(node) is tuple and len(node) == 2 and node[0] == "arg":
        names.add(node[1])
    elif type(node) is tuple and len(node) == 2 and node[0] == "input":
        paths.add(node[1])
    elif type(node) is tuple:
        for item in node:
            _collect_reads(item, names, paths)


#: How many answers a :class:`GroupGuard` remembers before starting afresh.
MEMO_SIZE: Final = 4096


class GroupGuard:
    """The guards of the rules one kind of event concerns, answers remembered per the values they read.

    :param guards: ``(rule, guard)`` pairs (the guards specialised for the event's name).
    """

    __slots__ = ("_memo", "args", "guards", "paths")

    def __init__(self, guards: tuple[tuple[Any, Guard], ...]) -> None:
        self.guards = guards
        names: set[str] = set()
        paths: set[tuple[str, ...]] = set()
        for _, guard in guards:
            more_names, more_paths = guard.reads()
            names |= more_names
            paths |= more_paths
        self.args = tuple(sorted(names))
        self.paths = tuple(sorted(paths))
        self._memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def ruled_out(self, event: Event) -> tuple[Any, ...]:
        """The rules whose guards rule ``event`` out."""
        raw = event.raw
        key = self._key(event)
        if key is not None:
            skipped = self._memo.get(key)
            if skipped is not None:
                return skipped
        arguments = _arguments(raw, self.args)
        skipped = tuple(rule for rule, guard in self.guards if not guard.may_match(raw, arguments))
        if key is not None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = skipped
        return skipped

    def _key(self, event: Event) -> tuple[Any, ...] | None:
        """The values the guards read, as a memory key that tells apart what Python's ``==`` would
        not (``1``, ``1.0`` and ``True``); ``None`` when one is not a string, an exact integer or a
        short array of strings, or when an argument name is there twice (the event's
        ``{name: value}`` then hides one)."""
        try:
            values = event.args
        except MalformedEventError:
            return None
        raw = event.raw
        args = raw.get("args")
        if args is not None and len(values) != len(args):
            return None
        key = []
        for name in self.args:
            value = values.get(name, _UNDEF)
            if value is None:  # "value": null, or no "value" at all (then undefined)
                value = _argument(raw, name)
            key.append(_key_part(value))
        key += [_key_part(_value(("input", path), raw, {}, {})) for path in self.paths]
        return None if _NO_KEY in key else tuple(key)


#: Longest array of strings (in characters, all together) a remembered answer may be keyed by.
MEMO_ARRAY_CHARS: Final = 1024
_INT: Final = "int"
_ARRAY: Final = "array"
_NULL: Final = ("null",)
_NO_KEY: Final = ("no key",)


def _key_part(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is _UNDEF:
        return value
    if value is None:
        return _NULL
    if kind is int and -_EXACT_INT < value < _EXACT_INT:
        return (_INT, value)
    if kind is list and all(type(item) is str for item in value) and sum(map(len, value)) <= MEMO_ARRAY_CHARS:
        return (_ARRAY, tuple(value))
    return _NO_KEY  # floats, booleans, other arrays, objects: evaluated each time


def _arguments(raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``helpers.get_tracee_argument(name)`` for each of ``names`` (see :func:`_argument`), in one pass."""
    args = raw.get("args", _UNDEF)
    if args is _UNDEF or args is None:
        return dict.fromkeys(names, _UNDEF)
    if type(args) is not list:
        return dict.fromkeys(names, UNKNOWN)
    found: dict[str, Any] = dict.fromkeys(names, _UNDEF)
    for arg in args:
        if type(arg) is dict:
            name = arg.get("name")
            if type(name) is str and name in found and "value" in arg:
                found[name] = arg["value"] if found[name] is _UNDEF else UNKNOWN
    return found


def _body(stmts: tuple[tuple[Any, ...], ...], i: int, raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    """``False`` when the body certainly fails from statement ``i``; otherwise ``True``/``UNKNOWN``."""
    n = len(stmts)
    while i < n:
        stmt = stmts[i]
        op = stmt[0]
        if op == "test":
            outcome = _test(stmt[1], raw, arguments, env)
        elif op == "assign":
            value = _value(stmt[2], raw, arguments, env)
            if value is _UNDEF:
                return False
            if value is UNKNOWN:
                return UNKNOWN
            env[stmt[1]] = value
            outcome = True
        elif op == "not":
            inner = _test(stmt[1], raw, arguments, env)
            outcome = UNKNOWN if inner is UNKNOWN else not inner
        elif op == "some":
            collection = _value(stmt[2], raw, arguments, env)
            if collection is _UNDEF:
                return False
            if type(collection) is not list:
                return UNKNOWN
            for item in collection:
                branch = dict(env)
                branch[stmt[1]] = item
                if _body(stmts, i + 1, raw, arguments, branch) is not False:
                    return UNKNOWN
            return False
        else:  # STOP
            return UNKNOWN
        if outcome is False:
            return False
        if outcome is UNKNOWN:
            return UNKNOWN
        i += 1
    return True


def _test(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    """``True``, ``False`` (failed or undefined, without an error) or ``UNKNOWN``."""
    return _TESTS[test[0]](test, raw, arguments, env)


def _truthy(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    value = _value(test[1], raw, arguments, env)
    if value is UNKNOWN:
        return UNKNOWN
    return value is not _UNDEF and value is not False


def _type(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    value = _value(test[2], raw, arguments, env)
    if value is _UNDEF or value is UNKNOWN:
        return False if value is _UNDEF else UNKNOWN
    return bool(_TYPE_TESTS[test[1]](value))


def _string(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    left = _value(test[2], raw, arguments, env)
    right = _value(test[3], raw, arguments, env)
    if left is UNKNOWN or right is UNKNOWN:  # evaluating it may fail, whatever the other one is
        return UNKNOWN
    if left is _UNDEF or right is _UNDEF:
        return False
    if type(left) is not str or type(right) is not str:
        return UNKNOWN  # an error in the engine, or a value this guard does not know
    return bool(_STRING_TESTS[test[1]](left, right))


def _elf(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    """``helpers.is_elf_file``: a base64 text of "\\x7fELF..." or a list starting with its byte values."""
    value = _value(test[1], raw, arguments, env)
    if value is _UNDEF or value is UNKNOWN:
        return False if value is _UNDEF else UNKNOWN
    if type(value) is str:
        return value.startswith("f0VMR")
    if type(value) is not list:
        return False  # the helper's default
    outcome: Any = len(value) >= len(_ELF_MAGIC)
    for item, byte in zip(value, _ELF_MAGIC, strict=False):
        same = _equal(item, byte)
        if same is False:
            return False
        if same is UNKNOWN:
            outcome = UNKNOWN
    return outcome


def _regex(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    value = _value(test[2], raw, arguments, env)
    if value is _UNDEF:
        return False
    if type(value) is not str:
        return UNKNOWN
    return UNKNOWN if test[1] in value else False


def _in(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    value = _value(test[1], raw, arguments, env)
    if value is _UNDEF or value is UNKNOWN:
        return False if value is _UNDEF else UNKNOWN
    outcome: Any = False
    for constant in test[2][1]:
        same = _equal(value, constant)
        if same is True:
            return True
        if same is UNKNOWN:
            outcome = UNKNOWN
    return outcome


def _compare(test: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    left = _value(test[1], raw, arguments, env)
    right = _value(test[2], raw, arguments, env)
    if left is UNKNOWN or right is UNKNOWN:  # evaluating it may fail, whatever the other one is
        return UNKNOWN
    if left is _UNDEF or right is _UNDEF:
        return False
    same = _equal(left, right)
    if same is UNKNOWN or test[0] == "eq":
        return same
    return not same


_TESTS: Final = {
    "truthy": _truthy,
    "type": _type,
    "string": _string,
    "elf": _elf,
    "regex": _regex,
    "in": _in,
    "eq": _compare,
    "ne": _compare,
}


def _value(operand: tuple[Any, ...], raw: Any, arguments: dict[str, Any], env: dict[str, Any]) -> Any:
    kind = operand[0]
    if kind == "arg":
        name = operand[1]
        value = arguments.get(name, _MISSING)
        if value is _MISSING:
            value = arguments[name] = _argument(raw, name)
        return value
    if kind == "input":
        value = raw
        for key in operand[1]:
            if type(value) is not dict:
                return _UNDEF
            value = value.get(key, _UNDEF)
            if value is _UNDEF:
                return _UNDEF
        return value
    if kind == "var":
        return env[operand[1]]
    return operand[1]  # const


_MISSING: Final = object()


def _argument(raw: Any, name: str) -> Any:
    """``helpers.get_tracee_argument(name)`` as Rego computes it, or ``UNKNOWN``."""
    args = raw.get("args", _UNDEF)
    if args is _UNDEF or args is None:
        return _UNDEF  # undefined (null[_] is undefined too)
    if type(args) is not list:
        return UNKNOWN  # input.args[_] over an object or a string: left to the engine
    found: Any = _UNDEF
    for arg in args:
        if type(arg) is dict and arg.get("name") == name and "value" in arg:
            if found is not _UNDEF:
                return UNKNOWN  # the helper would produce several outputs (an error) or one: the engine decides
            found = arg["value"]
    return found


def _equal(left: Any, right: Any) -> Any:
    """Rego's ``==`` on two JSON values: ``True``, ``False`` or ``UNKNOWN`` (floats, large numbers, composites)."""
    lt, rt = type(left), type(right)
    if lt is str or rt is str or lt is bool or rt is bool or left is None or right is None:
        return lt is rt and left == right
    lnum, rnum = lt is int or lt is float, rt is int or rt is float
    if lnum and rnum:
        if lt is int and rt is int and abs(left) < _EXACT_INT and abs(right) < _EXACT_INT:
            return left == right
        return UNKNOWN
    if lnum != rnum:
        return False  # a number and an array or object
    return UNKNOWN
