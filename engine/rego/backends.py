"""The engines that evaluate Rego signatures: regorus (default) and OPA.

They run in the Rego worker process (:mod:`.worker`), never in the engine's
own: the engine sends each event's JSON text (:mod:`.boundary`) with the
indices of the signatures it concerns, and :meth:`Backend.evaluate` answers
for all of them at once, timing each against the budget.

* :class:`RegorusBackend` (``gordon-to-regorus``, Rust). v0 and v1 files live
  in separate engines (v0 mode and v1 mode), each holding the helper modules.
  Each engine involved reads the event's JSON once (``set_input_json``); then
  every signature's ``tracee_match`` is evaluated against it.
* :class:`OpaBackend` (``opa-golib-python-bindings``: the real OPA, v1 syntax
  only). OPA takes the input with every query, so one query evaluates the
  ``tracee_match`` of all the event's signatures in an engine (like Tracee's
  ``--rego-aio``); when it fails, or overruns the budget, each signature is
  evaluated alone to find which one it was.

Two signatures with the same package cannot share an engine, so a slot takes
a signature only when its package is new there; otherwise another slot is
opened. A module is added to a slot and the slot is checked (regorus and OPA
compile lazily, and one module's compile error would break every signature of
the slot); a module that fails is taken out again and reported as a
:class:`~pytracee.engine.errors.RuleFileError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter, process_time
from typing import Any, Final

import orjson

from ..errors import RuleFileError
from .policy import (
    METADOC,
    SELECTED_EVENTS,
    RegoModule,
    clean_error,
    error_line,
    error_text,
    parse_module,
    regorus_engine,
)
from .protocol import STATE_GROUP, STATE_IDLE, STATE_INPUT

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalRule",
    "OpaBackend",
    "Outcome",
    "RegoEvaluationError",
    "RegorusBackend",
    "make_backend",
]

#: Rule paths of the documents read at load time.
LOAD_DOCUMENTS: Final = (METADOC, SELECTED_EVENTS)
_PROBE: Final = RegoModule(
    path=Path("<pytracee-probe>"),
    name="<pytracee-probe>",
    source="package pytracee.probe\n\nimport rego.v1\n\nready := true\n",
    syntax="v1",
    portable=True,
    package="data.pytracee.probe",
    package_line=1,
    rules={"ready": 5},
)
OPA_V0_MESSAGE: Final = (
    "Rego v0 syntax is not supported by --rego-engine opa; use regorus or add `if`/`contains`/`import rego.v1`"
)

#: Checks the documents read at load (raises RuleFileError to refuse the module).
Check = Callable[[dict[str, Any]], None]


class RegoEvaluationError(RuntimeError):
    """A signature's ``tracee_match`` failed on an event (message: ``file:line:col: what``)."""


@functools.cache
def engine_helpers() -> RegoModule:
    """The engine's own ``tracee.helpers`` module (engine/rego/helpers.rego)."""
    from importlib import resources  # here, as the Rego engine is: only runs with Rego rules pay for it

    source = resources.files(__package__).joinpath("helpers.rego").read_text(encoding="utf-8")
    return parse_module(Path("<pytracee>/helpers.rego"), source)


class LocalRule:
    """One signature's ``tracee_match`` in a backend of the worker.

    :param index: the signature's number, chosen by the engine.
    """

    __slots__ = ("index", "module", "path", "slot", "warm")

    def __init__(self, index: int, slot: Any, module: RegoModule) -> None:
        self.index = index
        self.slot = slot
        self.module = module
        self.path = f"{module.package}.tracee_match"
        #: It was evaluated before: the engine compiles a rule on its first evaluation, which is not timed.
        self.warm = False


class Outcome:
    """What one :meth:`Backend.evaluate` found, position by position of the rules asked for."""

    __slots__ = ("errors", "slow", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []
        #: ``[position, message]`` of the rules that failed.
        self.errors: list[list[Any]] = []
        #: ``[position, milliseconds]`` of the rules over the budget.
        self.slow: list[list[Any]] = []

    def json(self) -> bytes:
        """The :data:`~.protocol.RESULT` body."""
        return orjson.dumps([self.values, self.errors or None, self.slow or None], default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):  # a Rego set
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class Backend:
    """A Rego engine: takes helper and signature modules, evaluates signatures on JSON input."""

    name: str = ""

    def __init__(self) -> None:
        #: Events read by an engine (``set_input_json`` or a query with input).
        self.inputs = 0

    def add_helper(self, module: RegoModule) -> None:
        """Add an extra helper module (a ``*helpers.rego`` file) to every signature's engine."""
        raise NotImplementedError

    def add_signature(self, module: RegoModule, check: Check, index: int) -> LocalRule:
        """Add a signature module; ``check`` receives ``{METADOC: ..., SELECTED_EVENTS: ...}``.

        :raises RuleFileError: when the module does not compile next to the others or
            ``check`` refuses it; the backend is then left as it was.
        """
        raise NotImplementedError

    def accepts_regex(self, pattern: str) -> bool:
        """Whether ``regex.match`` accepts ``pattern`` in this engine (an invalid one is an evaluation error)."""
        return False

    def evaluate(self, rules: Sequence[LocalRule], text: bytes, budget: float, state: Any) -> Outcome:
        """Evaluate ``rules`` on one event's JSON ``text`` (checked UTF-8).

        :param budget: seconds one rule may take before it is reported in ``slow``.
        :param state: the shared ``state[0]``: set to the index of the rule
            being evaluated (or a ``STATE_*`` value) while it runs.
        """
        raise NotImplementedError


def _refuse(module: RegoModule, message: str) -> RuleFileError:
    return RuleFileError(module.path, error_text(message), error_line(message, module.name))


# --- regorus --------------------------------------------------------------------------------------


class _RegorusSlot:
    """One regorus engine (v0 or v1 mode) with the helpers and some signatures."""

    __slots__ = ("engine", "epoch", "input_error", "packages", "v0")

    def __init__(self, v0: bool, helpers: Sequence[RegoModule]) -> None:
        self.v0 = v0
        self.engine = regorus_engine(v0=v0)
        self.packages: dict[str, RegoModule] = {}
        self.epoch = 0  # the evaluation whose input the engine holds
        self.input_error: str | None = None
        for module in (_PROBE, *helpers):
            self.engine.add_policy(module.name, module.source)

    def add(self, module: RegoModule, check: Check | None = None) -> None:
        """Add ``module``; keep it only if the slot still compiles and ``check`` accepts it."""
        candidate = self.engine.clone()
        try:
            candidate.add_policy(module.name, module.source)
            candidate.set_input({})
            candidate.eval_rule(_PROBE.package + ".ready")
            documents = {}
            if check is not None:
                for rule in LOAD_DOCUMENTS:
                    documents[rule] = _read_document(candidate, module, rule)
        except RuntimeError as exc:
            raise _refuse(module, str(exc)) from None
        if check is not None:
            check(documents)
        self.engine = candidate
        self.epoch = 0


def _read_document(engine: Any, module: RegoModule, rule: str) -> Any:
    if rule not in module.rules:
        return None
    if rule == SELECTED_EVENTS:  # a set of objects: eval_rule cannot return it (unhashable)
        return orjson.loads(engine.eval_rule_as_json(f"{module.package}.{rule}"))
    return engine.eval_rule(f"{module.package}.{rule}")


def _value_as_json(engine: Any, path: str) -> Any:
    """``path``'s value through JSON: for values eval_rule cannot return (sets of objects)."""
    value = orjson.loads(engine.eval_rule_as_json(path))
    return None if value == "<undefined>" else value


def _cpu_timed(engine: Any, path: str, value: Any) -> tuple[float, Any]:
    """The CPU time of evaluating ``path`` again (the wall-clock time of the first run also
    counts the time other processes ran), and its value."""
    start = process_time()
    try:
        value = engine.eval_rule(path)
    except (RuntimeError, TypeError):
        pass  # as before: the first run's outcome stands
    return process_time() - start, value


class RegorusBackend(Backend):
    """regorus (``gordon-to-regorus``): v0 and v1 files, one set-input per event and engine."""

    name = "regorus"

    def __init__(self) -> None:
        super().__init__()
        engine_helpers_module = engine_helpers()
        # helper modules per mode: v0 engines take v0 and portable (import rego.v1) ones
        self._helpers: dict[bool, list[RegoModule]] = {False: [engine_helpers_module], True: [engine_helpers_module]}
        self._slots: dict[bool, list[_RegorusSlot]] = {False: [], True: []}
        self._epoch = 0

    def add_helper(self, module: RegoModule) -> None:
        modes = [True] if module.syntax == "v0" else [False, True] if module.portable else [False]
        added: list[tuple[_RegorusSlot, Any]] = []
        try:
            for v0 in modes:
                # no engine yet: check the helper in a throwaway one
                for slot in self._slots[v0] or [_RegorusSlot(v0, self._helpers[v0])]:
                    before = slot.engine
                    slot.add(module)
                    added.append((slot, before))
        except RuleFileError:
            for slot, before in added:
                slot.engine, slot.epoch = before, 0
            raise
        for v0 in modes:
            self._helpers[v0].append(module)

    def accepts_regex(self, pattern: str) -> bool:
        engine = regorus_engine()
        try:
            engine.add_policy(
                "<pytracee-regex>", 'package pytracee.regex\n\nimport rego.v1\n\nok if regex.match(input.p, "")\n'
            )
            engine.set_input_json(orjson.dumps({"p": pattern}).decode())
            engine.eval_rule("data.pytracee.regex.ok")
        except (RuntimeError, TypeError):  # orjson refuses what is not Unicode
            return False
        return True

    def add_signature(self, module: RegoModule, check: Check, index: int) -> LocalRule:
        v0 = module.syntax == "v0"
        slots = self._slots[v0]
        slot = next((s for s in slots if module.package not in s.packages), None)
        if slot is None:
            slot = _RegorusSlot(v0, self._helpers[v0])
            slot.add(module, check)
            slots.append(slot)
        else:
            slot.add(module, check)
        slot.packages[module.package] = module
        return LocalRule(index, slot, module)

    def evaluate(self, rules: Sequence[LocalRule], text: bytes, budget: float, state: Any) -> Outcome:
        outcome = Outcome()
        values, errors, slow = outcome.values, outcome.errors, outcome.slow
        self._epoch = epoch = self._epoch + 1
        decoded: str | None = None
        for position, rule in enumerate(rules):
            slot: _RegorusSlot = rule.slot
            engine = slot.engine
            if slot.epoch != epoch:
                slot.epoch = epoch
                state[0] = STATE_INPUT
                self.inputs += 1
                try:
                    if decoded is None:
                        decoded = text.decode("utf-8")
                    engine.set_input_json(decoded)
                    slot.input_error = None
                except (RuntimeError, UnicodeDecodeError) as exc:
                    slot.input_error = f"regorus cannot read the event: {clean_error(str(exc))}"
            if slot.input_error is not None:
                errors.append([position, slot.input_error])
                values.append(None)
                continue
            state[0] = rule.index
            start = perf_counter()
            try:
                value = engine.eval_rule(rule.path)
            except RuntimeError as exc:
                errors.append([position, clean_error(str(exc))])
                value = None
            except TypeError:  # a value with a set of objects in it
                value = _value_as_json(engine, rule.path)
            elapsed = perf_counter() - start
            if elapsed > budget:
                if rule.warm:
                    elapsed, value = _cpu_timed(engine, rule.path, value)
                    if elapsed > budget:
                        slow.append([position, elapsed * 1000.0])
                else:
                    rule.warm = True
            values.append(value)
        state[0] = STATE_IDLE
        return outcome


# --- OPA ------------------------------------------------------------------------------------------


class _OpaSlot:
    """One OPA engine with the helpers and some signatures; evaluates several signatures in one query."""

    def __init__(self, backend: OpaBackend) -> None:
        self.backend = backend
        self.modules: list[RegoModule] = []
        self.packages: dict[str, RegoModule] = {}
        self.engine = self._new_engine()
        self._queries: dict[tuple[LocalRule, ...], bytes] = {}
        #: The last run prepared a new query (OPA compiles it then: not timed).
        self.cold = False

    def _new_engine(self, skip: RegoModule | None = None) -> Any:
        from opa_bindings import OpaEngine

        engine = OpaEngine()
        for module in (_PROBE, *self.backend.helpers, *self.modules):
            if module is not skip:
                engine.add_policy(module.name, module.source)
        return engine

    def add(self, module: RegoModule, check: Check | None = None, *, helper: bool = False) -> None:
        from opa_bindings import OpaError

        try:
            self.engine.add_policy(module.name, module.source)
        except OpaError as exc:  # not added: the engine is unchanged
            raise _refuse(module, str(exc)) from None
        try:
            if helper:
                self.engine.eval_query("x := data.pytracee.probe.ready")
            else:
                documents = _opa_documents(self.engine, module)
                if check is not None:
                    check(documents)
        except (OpaError, RuleFileError) as exc:
            self.engine.close()
            self.engine = self._new_engine(skip=module)
            if isinstance(exc, RuleFileError):
                raise
            raise _refuse(module, str(exc)) from None
        self._queries.clear()
        if not helper:
            self.modules.append(module)
            self.packages[module.package] = module

    def forget(self, module: RegoModule) -> None:
        """Rebuild the engine without helper ``module`` (it broke another slot)."""
        self.engine.close()
        self.engine = self._new_engine(skip=module)
        self._queries.clear()

    def run(self, group: tuple[LocalRule, ...], payload: bytes) -> list[Any]:
        """The values of ``group``'s ``tracee_match`` (a :class:`_Failure` for those that failed)."""
        from opa_bindings import OpaError

        query = self._queries.get(group)
        self.cold = query is None
        if query is None:
            query = "; ".join(f"r{i} := [m | m := {rule.path}]" for i, rule in enumerate(group)).encode()
            self._queries[group] = query
        try:
            rows = self.backend.eval_raw(self.engine, query, payload)
        except OpaError as exc:
            if len(group) == 1:
                return [_Failure(clean_error(exc.message))]
            results = [self.run((rule,), payload)[0] for rule in group]  # which one failed; the others answer
            self.cold = True  # the time is not the group's: not timed
            return results
        bindings = rows[0].get("bindings", {}) if rows else {}
        out = []
        for i in range(len(group)):
            values = bindings.get(f"r{i}")
            out.append(values[0] if values else None)
        return out


class _Failure:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _opa_documents(engine: Any, module: RegoModule) -> dict[str, Any]:
    rows = engine.eval_query(
        f"meta := [m | m := {module.package}.{METADOC}]; sel := [s | s := {module.package}.{SELECTED_EVENTS}]"
    )
    bindings = rows[0] if rows else {}
    meta, sel = bindings.get("meta") or [], bindings.get("sel") or []
    return {
        METADOC: meta[0] if meta and METADOC in module.rules else None,
        SELECTED_EVENTS: sel[0] if sel and SELECTED_EVENTS in module.rules else None,
    }


class OpaBackend(Backend):
    """The real OPA engine (``opa-golib-python-bindings``): v1 files, one query per event and engine."""

    name = "opa"

    def __init__(self) -> None:
        import opa_bindings  # noqa: F401 - fail early when the package is missing

        super().__init__()
        self.helpers: list[RegoModule] = [engine_helpers()]
        self._slots: list[_OpaSlot] = []
        self._raw_eval = _raw_eval_available()

    def add_helper(self, module: RegoModule) -> None:
        if module.syntax == "v0":
            raise RuleFileError(module.path, OPA_V0_MESSAGE, module.v0_line or module.package_line)
        done: list[_OpaSlot] = []
        try:
            for slot in self._slots or [_OpaSlot(self)]:  # no engine yet: check it in a throwaway one
                slot.add(module, helper=True)
                done.append(slot)
        except RuleFileError:
            for slot in done:
                slot.forget(module)
            raise
        self.helpers.append(module)

    def accepts_regex(self, pattern: str) -> bool:
        from opa_bindings import OpaEngine, OpaError

        engine = OpaEngine()
        try:
            engine.eval_query('x := regex.match(input.p, "")', orjson.loads(orjson.dumps({"p": pattern})))
        except (OpaError, TypeError, ValueError):  # orjson refuses what is not Unicode
            return False
        finally:
            engine.close()
        return True

    def add_signature(self, module: RegoModule, check: Check, index: int) -> LocalRule:
        if module.syntax == "v0":
            raise RuleFileError(module.path, OPA_V0_MESSAGE, module.v0_line or module.package_line)
        slot = next((s for s in self._slots if module.package not in s.packages), None)
        if slot is None:
            slot = _OpaSlot(self)
            slot.add(module, check)
            self._slots.append(slot)
        else:
            slot.add(module, check)
        return LocalRule(index, slot, module)

    def evaluate(self, rules: Sequence[LocalRule], text: bytes, budget: float, state: Any) -> Outcome:
        outcome = Outcome()
        values: list[Any] = [None] * len(rules)
        by_slot: dict[_OpaSlot, list[int]] = {}
        for position, rule in enumerate(rules):
            by_slot.setdefault(rule.slot, []).append(position)
        for slot, positions in by_slot.items():
            group = tuple(rules[p] for p in positions)
            state[0] = group[0].index if len(group) == 1 else STATE_GROUP
            self.inputs += 1
            start = perf_counter()
            results = slot.run(group, text)
            elapsed = perf_counter() - start
            if elapsed <= budget or slot.cold:
                pass
            elif len(group) > 1:  # which one was slow: each alone, timed
                results = []
                for position, rule in zip(positions, group, strict=True):
                    state[0] = rule.index
                    alone, value = self._timed(slot, rule, text)
                    results.append(value)
                    if alone > budget:
                        outcome.slow.append([position, alone * 1000.0])
            else:
                alone, results[0] = self._timed(slot, group[0], text)
                if alone > budget:
                    outcome.slow.append([positions[0], alone * 1000.0])
            for position, value in zip(positions, results, strict=False):
                if type(value) is _Failure:
                    outcome.errors.append([position, value.message])
                    value = None
                values[position] = value
        state[0] = STATE_IDLE
        outcome.values = values
        return outcome

    @staticmethod
    def _timed(slot: _OpaSlot, rule: LocalRule, text: bytes) -> tuple[float, Any]:
        """One rule alone: CPU seconds and value (a new query is run twice, to time it compiled)."""
        for _ in range(2):
            start = process_time()
            (value,) = slot.run((rule,), text)
            elapsed = process_time() - start
            if not slot.cold:
                break
        return elapsed, value

    def eval_raw(self, engine: Any, query: bytes, payload: bytes) -> list[dict[str, Any]]:
        """Evaluate ``query`` with ``payload`` (JSON text) as input, without re-serialising it."""
        if not self._raw_eval:
            return [{"bindings": b} for b in engine.eval_query(query.decode(), orjson.loads(payload))]
        with engine._eval_lock:
            engine._eval_reset()
            envelope = engine._call(engine._lib.OpaEvalQuery, query, payload, 0, 0)
            return engine._eval_result(envelope) or []


def _raw_eval_available() -> bool:
    # opa-golib-python-bindings 0.4.4's internals; the public eval_query re-serialises the input
    from opa_bindings import OpaEngine

    return all(hasattr(OpaEngine, attr) for attr in ("_call", "_eval_reset", "_eval_result"))


#: --rego-engine choices.
BACKENDS: Final = {"regorus": RegorusBackend, "opa": OpaBackend}


def make_backend(name: str) -> Backend:
    """The backend called ``name`` (``regorus`` or ``opa``)."""
    return BACKENDS[name]()
