"""The CEL engines: compile an expression once, evaluate it per event.

Two backends implement the same environment (the variable ``event``, the
``trace.Event`` JSON object as read, and the functions of :mod:`.functions`):

* ``cel-expr-python`` (default): Google's CEL team's bindings of cel-cpp.
  Expressions are type-checked at load (undeclared functions and variables,
  a condition that cannot be a bool). cel-cpp converts the whole event when
  an expression first reads ``event``; one activation per event lets every
  expression of every signature share that conversion. Evaluation errors
  come back as values of type ``ERROR``; the iteration budget (10,000
  comprehension steps) comes back as an exception. Both become
  :class:`CelEvalError`.
* ``cel-python`` (``celpy``): pure Python, about 100 times slower; no type
  checker, so function and method names are checked against the environment
  at load. It runs with celpy's ``InterpretedRunner`` (its ``CompiledRunner``
  does not absorb errors in ``&&``/``||`` as CEL requires), extended with
  cel-cpp's iteration budget and a deadline (:class:`EvaluationStopped`). The
  event is converted to CEL values once per event, and only for expressions
  that mention ``event``.

Known differences of the two (CEL implementations differ here too):
cel-python reports ``x == null`` as an error when ``x`` is not null
(cel-expr-python: ``false``); ``int`` and ``uint`` do not compare
(``5 > 1u``) on either. cel-python's ``size(null)`` (0) is replaced by CEL's
(an error).

A backend's compile methods return plain callables taking the event's raw
dict: ``condition(raw) -> bool`` and ``value(raw) -> Python value``; both
raise :class:`CelEvalError` for anything that is not a proper result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from .functions import FUNCTIONS, TIMESTAMP_ACCESSORS, CelFunction, EventSlot
from .limits import ITERATION_BUDGET

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Backend",
    "CelCompileError",
    "CelEvalError",
    "EvaluationStopped",
    "create_backend",
]

DEFAULT_BACKEND: Final = "cel-expr-python"

Condition = Callable[[dict[str, Any]], bool]
ValueProgram = Callable[[dict[str, Any]], Any]


class CelCompileError(Exception):
    """An expression does not compile.

    :param message: what is wrong (first line), possibly followed by the
        expression with a caret under the error.
    :param line: line within the expression (1-based), when known.
    :param column: column within that line (1-based), when known.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class CelEvalError(Exception):
    """An evaluation failed (no such overload, missing key, budget, non-bool condition ...)."""


class EvaluationStopped(CelEvalError):
    """A cel-python evaluation went past the iteration budget or its deadline (no CEL operator absorbs it)."""


class Backend(Protocol):
    """What :class:`~pytracee.engine.cel.signature.CelSignature` needs from an engine."""

    name: str
    #: The arguments of the event being evaluated (see :class:`~.functions.EventSlot`).
    slot: EventSlot

    def compile_condition(self, text: str) -> Condition:
        """Compile a condition; the callable returns True/False or raises :class:`CelEvalError`."""
        ...

    def compile_value(self, text: str) -> ValueProgram:
        """Compile an output expression; the callable returns a Python value or raises :class:`CelEvalError`."""
        ...


# --- cel-expr-python -------------------------------------------------------------------------

_CPP_LOCATION = re.compile(r"<input>:(-?\d+):(-?\d+): ?(.*)")
_CPP_STATUS = re.compile(r"^[A-Z_]+: |\s*\[[A-Z_]+\]\s*$")


class CelExprPythonBackend:
    """cel-expr-python (cel-cpp): fast, type-checked."""

    name = "cel-expr-python"

    def __init__(self) -> None:
        from cel_expr_python import cel

        self._cel = cel
        self.slot = EventSlot()
        self._error_type = cel.Type.ERROR
        self._env = cel.NewEnv(
            variables={"event": cel.Type.DYN},
            functions=[self._declare(function) for function in FUNCTIONS.values()],
        )
        self._raw: dict[str, Any] | None = None
        self._activation: Any = None

    def activation(self, raw: dict[str, Any]) -> Any:
        """The activation of ``raw``, built once per event: cel-cpp converts the event on first use
        and every expression of every signature evaluating that event then shares the conversion."""
        if raw is not self._raw:
            self._activation = self._env.Activation(data={"event": raw})
            self._raw = raw
        return self._activation

    def _type(self, name: str) -> Any:
        cel = self._cel
        if name == "list":
            return cel.Type.List(cel.Type.DYN)
        if name == "map":
            return cel.Type.Map(cel.Type.DYN, cel.Type.DYN)
        return getattr(cel.Type, name.upper())

    def _declare(self, function: CelFunction) -> Any:
        cel = self._cel
        impl = function.bind(self.slot)
        overloads = []
        for params, result in function.overloads:
            overload_id = "_".join((function.name, *params))
            types = [self._type(p) for p in params]
            overloads.append(cel.Overload(overload_id, return_type=self._type(result), parameters=types, impl=impl))
            if function.member:
                overloads.append(
                    cel.Overload(
                        overload_id + "_member",
                        return_type=self._type(result),
                        parameters=types,
                        is_member=True,
                        impl=impl,
                    )
                )
        return cel.FunctionDecl(function.name, overloads)

    def _compile(self, text: str) -> Any:
        try:
            return self._env.compile(text)
        except RuntimeError as exc:
            raise _cpp_compile_error(str(exc)) from None

    def compile_condition(self, text: str) -> Condition:
        expression = self._compile(text)
        result_type = expression.return_type()
        if result_type not in (self._cel.Type.BOOL, self._cel.Type.DYN):
            raise CelCompileError(f"a condition must be a bool, but this expression is a {result_type.name().lower()}")
        evaluate = expression.eval
        describe = self._describe
        activation = self.activation

        def condition(raw: dict[str, Any]) -> bool:
            try:
                result = evaluate(activation=activation(raw))
            except RuntimeError as exc:  # e.g. "Iteration budget exceeded"
                raise CelEvalError(_strip_status(str(exc))) from None
            value = result.value()
            if value is True or value is False:
                return value
            raise CelEvalError(describe(result, condition=True))

        return condition

    def compile_value(self, text: str) -> ValueProgram:
        evaluate = self._compile(text).eval
        error_type = self._error_type
        describe = self._describe
        activation = self.activation

        def value(raw: dict[str, Any]) -> Any:
            try:
                result = evaluate(activation=activation(raw))
            except RuntimeError as exc:
                raise CelEvalError(_strip_status(str(exc))) from None
            if result.type() == error_type:
                raise CelEvalError(describe(result))
            return sorted_maps(result.plain_value())

        return value

    def _describe(self, result: Any, condition: bool = False) -> str:
        if result.type() == self._error_type:
            return _strip_status(str(result.value()))
        return f"the condition is a {result.type().name().lower()}, not a bool" if condition else "not a value"


def sorted_maps(value: Any) -> Any:
    """``value`` with the keys of its maps (at any depth) in sorted order, as Go prints maps:
    cel-cpp hands a map's entries out in an order that changes from one process to the next,
    and a finding's data must not."""
    if isinstance(value, dict):
        return {key: sorted_maps(value[key]) for key in sorted(value, key=_key_order)}
    if isinstance(value, list):
        return [sorted_maps(item) for item in value]
    return value


def _key_order(key: Any) -> tuple[str, Any]:
    """Map keys of different types (CEL allows bool, int, uint and string keys) sort by type first."""
    return type(key).__name__, key


def _strip_status(message: str) -> str:
    """``"UNKNOWN: No matching overloads ... [UNKNOWN]"`` -> ``"No matching overloads ..."``."""
    return _CPP_STATUS.sub("", message.strip())


def _cpp_compile_error(message: str) -> CelCompileError:
    """Turn cel-cpp's compile error text into a :class:`CelCompileError` (first error, with its caret)."""
    lines = _strip_status(message).splitlines()
    for index, line in enumerate(lines):
        match = _CPP_LOCATION.search(line)
        if match:
            row, column, text = int(match[1]), int(match[2]), match[3].strip()
            snippet = [s for s in lines[index + 1 : index + 3] if s.startswith(" |")]
            detail = "\n".join([text or "invalid expression", *snippet])
            return CelCompileError(detail, row if row > 0 else None, column if column > 0 else None)
    return CelCompileError(lines[0] if lines else "invalid expression")


# --- cel-python ------------------------------------------------------------------------------

#: Functions of cel-python's base library that standard CEL has too (its extras are left out).
_CELPY_STANDARD_FUNCTIONS: Final = TIMESTAMP_ACCESSORS | frozenset(
    {
        "bool",
        "bytes",
        "double",
        "duration",
        "int",
        "string",
        "timestamp",
        "type",
        "uint",
        "size",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "has",
    }
)
_CELPY_STANDARD_METHODS: Final = TIMESTAMP_ACCESSORS | frozenset(
    {
        "size",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "all",
        "exists",
        "exists_one",
        "map",
        "filter",
    }
)
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class CelPythonBackend:
    """cel-python (celpy): pure Python, interpreted."""

    name = "cel-python"

    def __init__(self) -> None:
        import celpy
        from celpy import celtypes

        self._celpy = celpy
        self._t = celtypes
        self.slot = EventSlot()
        self._env = celpy.Environment(runner_class=_bounded_runner(celpy, self.slot))  # an InterpretedRunner
        self._functions = {name: self._wrap(function) for name, function in FUNCTIONS.items()}
        self._functions["size"] = _celpy_size(celtypes)  # celpy's size(null) is 0; CEL's is an error
        self._methods = _CELPY_STANDARD_METHODS | {name for name, f in FUNCTIONS.items() if f.member}
        self._known = _CELPY_STANDARD_FUNCTIONS | set(FUNCTIONS)
        self._raw: dict[str, Any] | None = None
        self._event: Any = None

    # -- compiling --

    def _program(self, text: str) -> tuple[Any, bool]:
        celpy = self._celpy
        try:
            ast = self._env.compile(text)
        except celpy.CELParseError as exc:
            snippet = "\n".join(" | " + line for line in str(exc).rstrip("\n").splitlines())
            raise CelCompileError(f"syntax error\n{snippet}", exc.line, exc.column) from None
        uses_event = self._check(ast)
        return self._env.program(ast, functions=self._functions), uses_event

    def _check(self, ast: Any) -> bool:
        """Reject unknown functions and methods; return whether the expression mentions ``event``."""
        uses_event = False
        for tree in ast.iter_subtrees():
            if tree.data == "ident_arg":
                name = str(tree.children[0])
                if name not in self._known:
                    raise CelCompileError(f"undeclared reference to '{name}'", *_position(tree))
            elif tree.data == "member_dot_arg":
                name = str(tree.children[1])
                if name not in self._methods:
                    raise CelCompileError(f"undeclared method '{name}'", *_position(tree))
            elif tree.data == "ident" and str(tree.children[0]) == "event":
                uses_event = True
        return uses_event

    def compile_condition(self, text: str) -> Condition:
        program, uses_event = self._program(text)
        evaluate = self._evaluator(program, uses_event)

        def condition(raw: dict[str, Any]) -> bool:
            value = evaluate(raw)
            if isinstance(value, bool):  # BoolType is an int subclass, bool(...) below is the CEL bool
                return value
            if isinstance(value, self._t.BoolType):
                return bool(value)
            raise CelEvalError(f"the condition is a {type(value).__name__}, not a bool")

        return condition

    def compile_value(self, text: str) -> ValueProgram:
        program, uses_event = self._program(text)
        evaluate = self._evaluator(program, uses_event)
        return lambda raw: self._to_python(evaluate(raw))

    def _evaluator(self, program: Any, uses_event: bool) -> Callable[[dict[str, Any]], Any]:
        celpy = self._celpy

        def evaluate(raw: dict[str, Any]) -> Any:
            try:
                return program.evaluate({"event": self._cel_event(raw)} if uses_event else {})
            except celpy.CELEvalError as exc:
                raise CelEvalError(_celpy_message(exc)) from None
            except CelEvalError:  # EvaluationStopped, a value that cannot go to CEL
                raise
            except Exception as exc:  # noqa: BLE001 - celpy bugs, RecursionError: no match, not a crash
                raise CelEvalError(f"{type(exc).__name__}: {exc}") from None

        return evaluate

    def _cel_event(self, raw: dict[str, Any]) -> Any:
        if raw is not self._raw:  # once per event, shared by the signature's expressions
            self._event = self._to_cel(raw)
            self._raw = raw
        return self._event

    # -- values --

    def _to_cel(self, value: Any) -> Any:
        t = self._t
        if value is None:
            return None
        if isinstance(value, bool):
            return t.BoolType(value)
        if isinstance(value, int):
            if _INT64_MIN <= value <= _INT64_MAX:
                return t.IntType(value)
            if 0 <= value <= _UINT64_MAX:
                return t.UintType(value)
            return t.DoubleType(float(value))
        if isinstance(value, float):
            return t.DoubleType(value)
        if isinstance(value, str):
            return t.StringType(value)
        if isinstance(value, (bytes, bytearray)):
            return t.BytesType(bytes(value))
        if isinstance(value, Mapping):
            return t.MapType({t.StringType(str(k)): self._to_cel(v) for k, v in value.items()})
        if isinstance(value, (list, tuple)):
            return t.ListType([self._to_cel(v) for v in value])
        raise CelEvalError(f"cannot pass a {type(value).__name__} to CEL")

    def _to_python(self, value: Any) -> Any:
        t = self._t
        if value is None or isinstance(value, t.NullType):
            return None
        if isinstance(value, (bool, t.BoolType)):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, bytes):
            return bytes(value)
        if isinstance(value, Mapping):
            return sorted_maps({self._to_python(k): self._to_python(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._to_python(v) for v in value]
        raise CelEvalError(f"the result is a {type(value).__name__}, which has no JSON form")

    def _wrap(self, function: CelFunction) -> Callable[..., Any]:
        impl = function.bind(self.slot)
        accepted = [params for params, _ in function.overloads]
        name = function.name
        slot = self.slot

        def call(*args: Any) -> Any:
            if time.perf_counter() > slot.deadline:
                raise EvaluationStopped(_DEADLINE_PASSED)
            values = [self._to_python(a) for a in args]
            if not any(_accepts(params, values) for params in accepted):
                kinds = ", ".join(_kind(v) for v in values)
                raise TypeError(f"no matching overload for {name}({kinds})")
            try:
                result = impl(*values)
            except (TypeError, AttributeError, CelEvalError):
                raise
            except Exception as exc:  # noqa: BLE001 - celpy turns only ValueError into a CEL error
                raise ValueError(str(exc)) from None
            return self._to_cel(result)

        return call


_DEADLINE_PASSED: Final = "stopped: the evaluation ran past its deadline (twice the time budget)"


def _bounded_runner(celpy: Any, slot: EventSlot) -> type:
    """celpy's ``InterpretedRunner`` with cel-cpp's iteration budget and the event's deadline.

    Every step of a macro (``all``, ``exists``, ``exists_one``, ``map``, ``filter``: CEL's
    only loops) is counted; past :data:`~.limits.ITERATION_BUDGET` steps in one evaluation,
    or past :attr:`EventSlot.deadline`, it raises :class:`EvaluationStopped`.
    """
    from celpy.evaluation import Evaluator

    class Meter:
        __slots__ = ("steps",)

        def __init__(self) -> None:
            self.steps = 0

        def step(self) -> None:
            self.steps += 1
            if self.steps > ITERATION_BUDGET:
                raise EvaluationStopped("Iteration budget exceeded")
            if time.perf_counter() > slot.deadline:
                raise EvaluationStopped(_DEADLINE_PASSED)

    def metered(step: Callable[[Any], Any], meter: Meter) -> Callable[[Any], Any]:
        def counted(value: Any) -> Any:
            meter.step()
            return step(value)

        return counted

    class BoundedEvaluator(Evaluator):
        meter: Meter

        def sub_evaluator(self, ast: Any) -> BoundedEvaluator:
            nested = BoundedEvaluator(ast, activation=self.activation)
            nested.meter = self.meter
            return nested

        def build_macro_eval(self, child: Any) -> Callable[[Any], Any]:
            return metered(super().build_macro_eval(child), self.meter)

        def build_ss_macro_eval(self, child: Any) -> Callable[[Any], Any]:
            return metered(super().build_ss_macro_eval(child), self.meter)

    class BoundedRunner(celpy.InterpretedRunner):  # type: ignore[misc]
        def evaluate(self, context: Any) -> Any:
            evaluator = BoundedEvaluator(ast=self.ast, activation=self.new_activation())
            evaluator.meter = Meter()
            return evaluator.evaluate(context)

    return BoundedRunner


def _celpy_size(celtypes: Any) -> Callable[[Any], Any]:
    def size(container: Any) -> Any:
        if not isinstance(container, (str, bytes, list, dict)):
            raise TypeError(f"no matching overload for size({type(container).__name__})")
        return celtypes.IntType(len(container))

    return size


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dict):
        return "map"
    return "list" if isinstance(value, list) else type(value).__name__


def _accepts(params: tuple[str, ...], values: list[Any]) -> bool:
    if len(params) != len(values):
        return False
    for param, value in zip(params, values, strict=True):
        kind = _kind(value)
        if param in ("dyn", kind) or (param == "uint" and kind == "int" and value >= 0):
            continue
        return False
    return True


def _position(tree: Any) -> tuple[int | None, int | None]:
    meta = getattr(tree, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return None, None
    return getattr(meta, "line", None), getattr(meta, "column", None)


def _celpy_message(exc: Exception) -> str:
    args = exc.args
    if len(args) >= 3 and args[2]:
        detail = args[2][0] if isinstance(args[2], tuple) and args[2] else args[2]
        return f"{args[0]}: {detail}"
    return str(args[0]) if args else type(exc).__name__


# --- choosing ----------------------------------------------------------------------------------

#: Backend name -> class.
BACKENDS: Final[Mapping[str, type[CelExprPythonBackend | CelPythonBackend]]] = {
    CelExprPythonBackend.name: CelExprPythonBackend,
    CelPythonBackend.name: CelPythonBackend,
}


def create_backend(name: str) -> Backend:
    """A new backend by name.

    :raises ValueError: for an unknown name.
    :raises ImportError: when the backend's package is not installed.
    """
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown CEL engine {name!r}; choose one of {', '.join(BACKENDS)}") from None
    return cls()
