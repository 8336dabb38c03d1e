"""The engines that evaluate Rego signatures: regorus (default) and OPA.

Both keep every signature of a session in a few long-lived engines ("slots")
and convert each event once for all the signatures it concerns:

* :class:`RegorusBackend` (``gordon-to-regorus``, Rust, in-process). v0 and v1
  files live in separate engines (v0 mode and v1 mode), each holding the
  helper modules. The first signature that sees an event sets the engine's
  input (the raw JSON line when the reader kept it, else the dict); the others
  evaluate their ``tracee_match`` against the same input.
* :class:`OpaBackend` (``opa-golib-python-bindings``: the real OPA, in-process,
  v1 syntax only). OPA takes the input with every query, so the first
  signature that sees an event runs one query evaluating ``tracee_match`` of
  every active signature selected by that event (like Tracee's ``--rego-aio``)
  and the others read their result from it.

Two signatures with the same package cannot share an engine, so a slot takes
a signature only when its package is new there; otherwise another slot is
opened. A module is added to a slot and the slot is checked (regorus and OPA
compile lazily, and one module's compile error would break every signature of
the slot); a module that fails is taken out again and reported as a
:class:`~pytracee.engine.plugins.RuleFileError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson

from ..events import Event
from ..plugins import RuleFileError
from ..selectors import ANY, EventSelector
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

__all__ = ["BACKENDS", "Backend", "OpaBackend", "RegoEvaluationError", "RegorusBackend", "Rule", "make_backend"]

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
    source = resources.files(__package__).joinpath("helpers.rego").read_text(encoding="utf-8")
    return parse_module(Path("<pytracee>/helpers.rego"), source)


class Rule:
    """One signature's ``tracee_match`` in a backend: what :class:`~.signature.RegoSignature` calls per event."""

    __slots__ = ()

    def evaluate(self, event: Event) -> Any:
        """The value of ``tracee_match`` for ``event``: ``None`` when undefined.

        :raises RegoEvaluationError: when the policy fails on the event.
        """
        raise NotImplementedError

    def activate(self, selectors: Sequence[EventSelector]) -> None:
        """The signature runs in a session from now on (it was initialised)."""

    def deactivate(self) -> None:
        """The signature's session ended (it was closed)."""


class Backend:
    """A Rego engine for one session: takes helper and signature modules, evaluates signatures."""

    name: str = ""

    def add_helper(self, module: RegoModule) -> None:
        """Add an extra helper module (a ``*helpers.rego`` file) to every signature's engine."""
        raise NotImplementedError

    def add_signature(self, module: RegoModule, check: Check) -> Rule:
        """Add a signature module; ``check`` receives ``{METADOC: ..., SELECTED_EVENTS: ...}``.

        :raises RuleFileError: when the module does not compile next to the others or
            ``check`` refuses it; the backend is then left as it was.
        """
        raise NotImplementedError


def _refuse(module: RegoModule, message: str) -> RuleFileError:
    return RuleFileError(module.path, error_text(message), error_line(message, module.name))


# --- regorus --------------------------------------------------------------------------------------


class _RegorusSlot:
    """One regorus engine (v0 or v1 mode) with the helpers and some signatures."""

    __slots__ = ("engine", "event", "packages", "v0")

    def __init__(self, v0: bool, helpers: Sequence[RegoModule]) -> None:
        self.v0 = v0
        self.engine = regorus_engine(v0=v0)
        self.packages: dict[str, RegoModule] = {}
        self.event: Event | None = None
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
        self.event = None


def _read_document(engine: Any, module: RegoModule, rule: str) -> Any:
    if rule not in module.rules:
        return None
    if rule == SELECTED_EVENTS:  # a set of objects: eval_rule cannot return it (unhashable)
        return orjson.loads(engine.eval_rule_as_json(f"{module.package}.{rule}"))
    return engine.eval_rule(f"{module.package}.{rule}")


class _RegorusRule(Rule):
    __slots__ = ("module", "path", "slot")

    def __init__(self, slot: _RegorusSlot, module: RegoModule) -> None:
        self.slot = slot
        self.module = module
        self.path = f"{module.package}.tracee_match"

    def evaluate(self, event: Event) -> Any:
        slot = self.slot
        engine = slot.engine
        try:
            if slot.event is not event:
                slot.event = None
                text = event.text
                if text is not None:
                    engine.set_input_json(text.decode("utf-8"))
                else:
                    engine.set_input(event.raw)
                slot.event = event
            return engine.eval_rule(self.path)
        except RuntimeError as exc:
            raise RegoEvaluationError(clean_error(str(exc))) from None


class RegorusBackend(Backend):
    """regorus (``gordon-to-regorus``): v0 and v1 files, one set-input per event and engine."""

    name = "regorus"

    def __init__(self) -> None:
        engine_helpers_module = engine_helpers()
        # helper modules per mode: v0 engines take v0 and portable (import rego.v1) ones
        self._helpers: dict[bool, list[RegoModule]] = {False: [engine_helpers_module], True: [engine_helpers_module]}
        self._slots: dict[bool, list[_RegorusSlot]] = {False: [], True: []}

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
                slot.engine, slot.event = before, None
            raise
        for v0 in modes:
            self._helpers[v0].append(module)

    def add_signature(self, module: RegoModule, check: Check) -> Rule:
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
        return _RegorusRule(slot, module)


# --- OPA ------------------------------------------------------------------------------------------


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _OpaSlot:
    """One OPA engine with the helpers and some signatures; evaluates all of an event's signatures at once."""

    def __init__(self, backend: OpaBackend) -> None:
        self.backend = backend
        self.modules: list[RegoModule] = []
        self.packages: dict[str, RegoModule] = {}
        self.engine = self._new_engine()
        self.active: dict[_OpaRule, tuple[EventSelector, ...]] = {}
        self._groups: dict[tuple[str, str, str], tuple[_OpaRule, ...]] = {}
        self._queries: dict[tuple[_OpaRule, ...], bytes] = {}
        self.event: Event | None = None
        self.results: dict[_OpaRule, Any] = {}

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
        self.event = None
        if not helper:
            self.modules.append(module)
            self.packages[module.package] = module

    def forget(self, module: RegoModule) -> None:
        """Rebuild the engine without helper ``module`` (it broke another slot)."""
        self.engine.close()
        self.engine = self._new_engine(skip=module)
        self.event = None

    # --- per event ----------------------------------------------------------------------

    def changed(self) -> None:
        self._groups.clear()
        self.event = None

    def result(self, rule: _OpaRule, event: Event) -> Any:
        if self.event is not event:
            self.event = event
            self.results = {}
        results = self.results
        if rule not in results:
            group = self._group(event)
            results.update(self._run(group if rule in group else (rule,), event))
        value = results[rule]
        if type(value) is _Failure:
            raise value.error
        return value

    def _group(self, event: Event) -> tuple[_OpaRule, ...]:
        key = (event.source, event.raw["eventName"], event.origin)
        group = self._groups.get(key)
        if group is None:
            source, name, origin = key
            group = tuple(
                rule
                for rule, selectors in self.active.items()
                if any(
                    s.source == source and s.name in (name, ANY) and s.origin in (origin, ANY) for s in selectors
                )
            )
            self._groups[key] = group
        return group

    def _run(self, group: tuple[_OpaRule, ...], event: Event) -> dict[_OpaRule, Any]:
        from opa_bindings import OpaError

        query = self._queries.get(group)
        if query is None:
            query = "; ".join(
                f"r{i} := [m | m := {rule.module.package}.tracee_match]" for i, rule in enumerate(group)
            ).encode()
            self._queries[group] = query
        text = event.text
        payload = text if text is not None else orjson.dumps(event.raw)
        try:
            rows = self.backend.eval_raw(self.engine, query, payload)
        except OpaError as exc:
            if len(group) == 1:
                return {group[0]: _Failure(RegoEvaluationError(clean_error(exc.message)))}
            results: dict[_OpaRule, Any] = {}
            for rule in group:  # find which signature failed; the others still answer
                results.update(self._run((rule,), event))
            return results
        bindings = rows[0].get("bindings", {}) if rows else {}
        out = {}
        for i, rule in enumerate(group):
            values = bindings.get(f"r{i}")
            out[rule] = values[0] if values else None
        return out


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


class _OpaRule(Rule):
    __slots__ = ("module", "slot")

    def __init__(self, slot: _OpaSlot, module: RegoModule) -> None:
        self.slot = slot
        self.module = module

    def evaluate(self, event: Event) -> Any:
        return self.slot.result(self, event)

    def activate(self, selectors: Sequence[EventSelector]) -> None:
        self.slot.active[self] = tuple(selectors)
        self.slot.changed()

    def deactivate(self) -> None:
        if self.slot.active.pop(self, None) is not None:
            self.slot.changed()


class OpaBackend(Backend):
    """The real OPA engine (``opa-golib-python-bindings``): v1 files, one query per event."""

    name = "opa"

    def __init__(self) -> None:
        import opa_bindings  # noqa: F401 - fail early when the package is missing

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

    def add_signature(self, module: RegoModule, check: Check) -> Rule:
        if module.syntax == "v0":
            raise RuleFileError(module.path, OPA_V0_MESSAGE, module.v0_line or module.package_line)
        slot = next((s for s in self._slots if module.package not in s.packages), None)
        if slot is None:
            slot = _OpaSlot(self)
            slot.add(module, check)
            self._slots.append(slot)
        else:
            slot.add(module, check)
        return _OpaRule(slot, module)

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
