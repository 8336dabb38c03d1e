"""A detector as a signature: :class:`CelSignature`.

It is built once per detector file (:func:`build_signature`): metadata from
the spec, one selector per event and origin (with the engine data filters),
and every condition and output expression compiled once by the backend; a
detector whose worst case is too costly (:mod:`.cost`) is refused.

Per event (:meth:`CelSignature.on_event`):

1. Data filters with integer values, which the engine cannot apply, are
   checked (``request=0`` accepts ``0`` and ``"0"``): for an event with such
   filters the signature checks its requirements in full (any one of them
   passing, with its origin and all its filters, is enough).
2. The event is admitted to CEL (:mod:`.boundary`, once per event for all the
   signatures of a backend): an event CEL cannot take is an evaluation error.
3. The event's arguments go into the backend's slot for ``getEventData``,
   with the deadline past which cel-python stops (:mod:`.limits`).
4. The conditions are evaluated in order; the first false one ends it. A
   condition is first decided in Python where its answer is certain
   (:mod:`.shortcut`); otherwise the backend evaluates it, on the event with
   only the fields the backend's expressions read (:mod:`.projection`).
5. When all hold, the output fields are evaluated into the finding's Data
   (``None`` when the detector has no output fields) and the finding is emitted.

An evaluation error (``getEventData("flags").startsWith("O_")`` on an int
flags value, a missing key, the iteration budget ...) means *no match*: it is
counted per signature, the first one is logged with the event, and
:meth:`CelSignature.close` logs how many there were. An output field whose
expression fails is left out of Data (and counted the same way), so a
finding is never lost to a field. Time budget overruns are handled as
described in :mod:`.limits`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from ..errors import RuleFileError
from ..events import Event
from ..findings import SignatureMetadata
from ..params import Params, resolve_params
from ..selectors import ANY, EventSelector
from ..signature import Signature, SignatureContext
from .backends import Backend, CelCompileError, CelEvalError
from .boundary import EventGate, EventRejected
from .cost import ExpressionTooCostly, check_cost
from .limits import ABORT_AFTER_BUDGETS, TimeBudget
from .parsetree import ParsedExpression, ParseTreeError, parse
from .projection import WHOLE_EVENT, referenced_fields, union
from .shortcut import Decision, compile_shortcut
from .spec import DetectorSpec, EventRequirement, Expression

__all__ = ["CelSignature", "CelTimeBudgetExceeded", "build_signature"]


class CelTimeBudgetExceeded(RuntimeError):
    """Raised once, when a signature is disabled for overrunning its time budget."""


class CelSignature(Signature):
    """A signature defined by a detector YAML file with CEL conditions.

    :param spec: the parsed detector.
    :param backend: the CEL engine that compiled its expressions.
    :param conditions: the compiled conditions, in order.
    :param fields: ``(name, compiled expression)`` of the output fields.
    :param budget_ms: time budget of one event's evaluation.
    """

    language: ClassVar[str] = "cel"

    def __init__(
        self,
        spec: DetectorSpec,
        backend: Backend,
        conditions: Sequence[Callable[[dict[str, Any]], bool]],
        fields: Sequence[tuple[str, Callable[[dict[str, Any]], Any]]],
        budget_ms: float,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.parameters = dict(spec.params)
        self.metadata = SignatureMetadata(
            id=spec.id,
            name=spec.name,
            version=spec.version,
            event_name=spec.event_name,
            description=spec.description,
            tags=spec.tags,
            properties=dict(spec.properties),
        )
        self.selected_events = [
            EventSelector(requirement.name, origin, "tracee", dict(requirement.filters))
            for requirement in spec.events
            for origin in requirement.origins
        ]
        self._full_checks: dict[str, tuple[EventRequirement, ...]] = {
            name: tuple(r for r in spec.events if r.name == name)
            for name in {r.name for r in spec.events if r.value_filters}
        }
        self._conditions = tuple(conditions)
        self._fields = tuple(fields)
        self._shortcuts = _shortcuts(spec, resolve_params(spec.params) if spec.params else None)
        self._no_shortcuts = (None,) * len(self._shortcuts)
        self._index = 0  # the condition being evaluated by the backend
        self._slot = backend.slot
        self._gate = _gate(backend)
        self._gate.require(_fields_read(spec))
        self._budget = TimeBudget(budget_ms)
        self._budget_seconds = self._budget.seconds
        self._abort_seconds = self._budget.seconds * ABORT_AFTER_BUDGETS
        self.evaluations = 0
        #: Evaluation errors (each one counted as no match).
        self.errors = 0
        #: Where and why the first evaluation error happened.
        self.first_error = ""
        self.disabled = False

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        if self.parameters:  # compiled again with the values in force
            conditions, fields = _compile_all(self.spec, self.backend, self.params)
            self._conditions, self._fields = tuple(conditions), tuple(fields)
            self._shortcuts = _shortcuts(self.spec, self.params)

    def __repr__(self) -> str:
        return f"<CelSignature {self.spec.id} from {self.spec.path}:{self.spec.line} ({self.backend.name})>"

    # --- the hot path ---

    def on_event(self, event: Event) -> None:
        if self.disabled:
            return
        args = event.args
        if self._full_checks:
            requirements = self._full_checks.get(event.name)
            if requirements and not any(_accepts(r, event, args) for r in requirements):
                return
        self.evaluations += 1
        try:
            raw, args = self._gate.admit(event, args)
        except EventRejected as exc:
            self._failed(event, "the event", None, exc)
            return
        slot = self._slot
        slot.args = args
        start = time.perf_counter()
        slot.deadline = start + self._abort_seconds
        data: dict[str, Any] | None = None
        matched = False
        try:
            if self._hold(raw, args):
                matched = True
                if self._fields:
                    data = self._output(self._gate.view(), event)
        except CelEvalError as exc:
            failed = self.spec.conditions[self._index]
            self._failed(event, failed.where, failed.line, exc)
        elapsed = time.perf_counter() - start
        if matched:
            self.emit(event, data)
        if elapsed > self._budget_seconds:
            # wall-clock time also counts what other processes ran meanwhile: judge on this thread's CPU time
            elapsed = self._cpu_seconds(raw, args)
            if elapsed > self._budget_seconds:
                self._overrun(event, elapsed)

    def _hold(self, raw: dict[str, Any], args: Mapping[str, Any]) -> bool:
        """Whether every condition holds, in order (the first false one ends it).

        :raises CelEvalError: from the backend, evaluating condition number :attr:`_index`.
        """
        shortcuts = self._shortcuts if self._gate.decidable else self._no_shortcuts
        view: dict[str, Any] | None = None
        for index, condition in enumerate(self._conditions):
            decide = shortcuts[index]
            if decide is not None:
                decided = decide(raw, args)
                if decided is True:
                    continue
                if decided is False:
                    return False
            if view is None:
                view = self._gate.view()
            self._index = index
            if not condition(view):
                return False
        return True

    def _cpu_seconds(self, raw: dict[str, Any], args: Mapping[str, Any]) -> float:
        """The CPU time of evaluating the conditions again (CEL is side-effect free)."""
        slot = self._slot
        start = time.thread_time()
        slot.deadline = time.perf_counter() + self._abort_seconds
        try:
            self._hold(raw, args)
        except CelEvalError:
            pass  # as before: the first evaluation's outcome stands
        return time.thread_time() - start

    def _output(self, view: dict[str, Any], event: Event) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for (name, expression), output in zip(self._fields, self.spec.output, strict=False):
            try:
                data[name] = expression(view)
            except CelEvalError as exc:
                self._failed(event, output.expression.where, output.expression.line, exc)
        return data

    # --- errors and budget ---

    def _failed(self, event: Event, what: str, line: int | None, exc: CelEvalError) -> None:
        self.errors += 1
        if self.errors == 1:
            where = f" at {event.location}" if event.location else ""
            self.first_error = f"{what}: {exc}"
            self.ctx.logger.warning(
                "%s: %s%s failed on %s event%s: %s; counted as no match "
                "(further evaluation errors of this signature are only counted)",
                self.spec.id,
                what,
                f" (line {line})" if line else "",
                event.name,
                where,
                exc,
            )

    def _overrun(self, event: Event, elapsed: float) -> None:
        stop = self._budget.overrun(self.evaluations)
        budget_ms = self._budget_seconds * 1000
        where = f" at {event.location}" if event.location else ""
        # A single overrun is often a pause of the whole process (garbage collection), not the rule.
        self.ctx.logger.debug(
            "%s: evaluating a %s event%s took %.1f ms, over the %.1f ms budget",
            self.spec.id,
            event.name,
            where,
            elapsed * 1000,
            budget_ms,
        )
        if stop:
            self.disabled = True
            raise CelTimeBudgetExceeded(
                f"{self._budget.overruns} evaluations over the {budget_ms:g} ms budget "
                f"(last {elapsed * 1000:.1f} ms); signature {self.spec.id} ({self.spec.path}) disabled for this run"
            )

    def close(self) -> None:
        if self.errors:
            self.ctx.logger.warning(
                "%s: %d of %d evaluations failed and counted as no match (first: %s)",
                self.spec.id,
                self.errors,
                self.evaluations,
                self.first_error,
            )
        if self._budget.overruns and not self.disabled:
            self.ctx.logger.info(
                "%s: %d evaluations over the %g ms budget",
                self.spec.id,
                self._budget.overruns,
                self._budget_seconds * 1000,
            )


def _accepts(requirement: EventRequirement, event: Event, args: Mapping[str, Any]) -> bool:
    """Whether ``event`` meets one requirement: its origin, data filters and integer data filters."""
    if ANY not in requirement.origins and event.origin not in requirement.origins:
        return False
    return all(p.matches(args.get(arg)) for arg, p in requirement.filters.items()) and all(
        f.matches(args.get(arg)) for arg, f in requirement.value_filters.items()
    )


def build_signature(spec: DetectorSpec, backend: Backend, budget_ms: float) -> CelSignature:
    """Compile the spec's expressions with ``backend`` and build the signature.

    :raises RuleFileError: for an expression that does not compile, naming its file line.
    """
    conditions, fields = _compile_all(spec, backend, resolve_params(spec.params) if spec.params else None)
    expressions = {e.where: e for e in (*spec.conditions, *(f.expression for f in spec.output))}
    try:
        check_cost({where: e.text for where, e in expressions.items()})
    except ExpressionTooCostly as exc:
        expression = expressions[exc.where]
        line = expression.line + (exc.line - 1 if exc.line else 0)
        column = f", column {exc.column}" if exc.column and exc.line else ""
        raise RuleFileError(spec.path, f"{exc.where}: too costly{column}: {exc.message}", line) from None
    return CelSignature(spec, backend, conditions, fields, budget_ms)


_GATES: weakref.WeakKeyDictionary[Backend, EventGate] = weakref.WeakKeyDictionary()


def _gate(backend: Backend) -> EventGate:
    """The backend's event gate, shared by its signatures (one admission per event)."""
    gate = _GATES.get(backend)
    if gate is None:
        gate = _GATES[backend] = EventGate()
    return gate


def _parsed(expression: Expression) -> ParsedExpression | None:
    try:
        return parse(expression.text)
    except ParseTreeError:
        return None  # the backend compiled it: left to the backend whole


def _shortcuts(spec: DetectorSpec, params: Params | None) -> tuple[Decision | None, ...]:
    """The Python decision of each condition (None where there is none), with ``params`` bound."""
    bindings = {"params": params.as_json()} if params is not None else None
    decisions = []
    for expression in spec.conditions:
        parsed = _parsed(expression)
        decisions.append(None if parsed is None else compile_shortcut(parsed, bindings))
    return tuple(decisions)


def _fields_read(spec: DetectorSpec) -> frozenset[str] | None:
    """The event fields the detector's conditions and output fields read (None: all of them)."""
    expressions = (*spec.conditions, *(f.expression for f in spec.output))
    parsed = [_parsed(e) for e in expressions]
    return union(WHOLE_EVENT if p is None else referenced_fields(p) for p in parsed)


def _compile_all(
    spec: DetectorSpec, backend: Backend, params: Params | None
) -> tuple[list[Any], list[tuple[str, Any]]]:
    """The compiled conditions and output fields; with ``params``, each bound to them."""
    conditions = [_compile(spec, e, backend.compile_condition, params, False) for e in spec.conditions]
    fields = [(f.name, _compile(spec, f.expression, backend.compile_value, params, True)) for f in spec.output]
    return conditions, fields


def _bind_params(text: str, params: Params, value: bool) -> str:
    """``text`` with ``params`` bound to the values (a one-element comprehension; JSON is CEL).

    The expression starts on the second line, so its own lines shift by one.
    """
    literal = orjson.dumps(params.as_json()).decode()
    if value:
        return f"[{literal}].map(params,\n{text}\n)[0]"
    return f"[{literal}].exists(params,\n{text}\n)"


def _compile(
    spec: DetectorSpec,
    expression: Expression,
    compile_: Callable[[str], Any],
    params: Params | None = None,
    value: bool = False,
) -> Any:
    text = expression.text if params is None else _bind_params(expression.text, params, value)
    shift = 0 if params is None else 1
    try:
        return compile_(text)
    except CelCompileError as exc:
        line = expression.line + (max(exc.line - 1 - shift, 0) if exc.line else 0)
        column = f", column {exc.column}" if exc.column else ""
        raise RuleFileError(spec.path, f"{expression.where}: CEL error{column}: {exc.message}", line) from None
