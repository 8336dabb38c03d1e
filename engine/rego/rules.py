"""Rego signatures as the engine holds them: :class:`WorkerRule` in a :class:`Namespace`.

A :class:`Namespace` is one collector's share of a worker (:mod:`.client`): it
loads that collector's files and knows which of its signatures are active.
Per event, the first signature asking (:meth:`WorkerRule.evaluate`) gets the
answers of every active signature of the namespace that selects the event,
in one round trip (:class:`Answers`, kept on the client until the next
event); the others read theirs from it.

What the engine sees is described in :mod:`.client`: evaluation errors,
input errors and budget overruns are exceptions of the signature and event;
a signature that hangs or kills the worker is disabled at once, the worker is
restarted and the event's other signatures are evaluated again.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from ..errors import RuleFileError
from ..events import Event, origin_of
from ..selectors import ANY, EventSelector
from .boundary import RegoInputError, event_json
from .client import Died, Stuck, WorkerClient, WorkerError
from .guards import GroupGuard, Guard
from .limits import HARD_TIMEOUT_FACTOR, LOAD_TIMEOUT_S, TimeBudget
from .protocol import STATE_GROUP, STATE_INPUT, eval_prefix

__all__ = [
    "Answers",
    "Namespace",
    "RegoEvaluationError",
    "RegoSignatureDisabled",
    "RegoTimeBudgetExceeded",
    "Rule",
    "WorkerRule",
]

_NO_ERRORS: Final[list[Any]] = []
#: pytracee's helper package: a helper module adding to it turns the guards off.
HELPERS_PACKAGE: Final = "data.tracee.helpers"


class RegoEvaluationError(RuntimeError):
    """A signature's ``tracee_match`` failed on an event (message: ``file:line:col: what``)."""


class RegoSignatureDisabled(RuntimeError):
    """Raised once, when a signature is switched off for the rest of the run (the message says why)."""


class RegoTimeBudgetExceeded(RegoSignatureDisabled):
    """A signature overran its time budget too often; ``value`` is its last ``tracee_match``."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


class Rule:
    """One signature's ``tracee_match``: what :class:`~.signature.RegoSignature` calls per event."""

    __slots__ = ()

    def evaluate(self, event: Event) -> Any:
        """The value of ``tracee_match`` for ``event``: ``None`` when undefined.

        :raises RegoEvaluationError: when the policy fails on the event.
        :raises RegoInputError: when the event cannot be handed to Rego.
        :raises RegoSignatureDisabled: once, when the signature is switched off.
        """
        raise NotImplementedError

    def activate(self, selectors: Sequence[EventSelector]) -> None:
        """The signature runs in a session from now on (it was initialised)."""

    def deactivate(self) -> None:
        """The signature's session ended (it was closed)."""


class Answers:
    """One event's answers for some rules (``positions``: rule -> its place in ``values``)."""

    __slots__ = ("asked", "error", "errors", "event", "positions", "slow", "values")

    def __init__(
        self,
        event: Event,
        positions: dict[Any, int],
        values: list[Any],
        errors: list[Any] | None = None,
        slow: list[Any] | None = None,
        error: Exception | None = None,
        asked: int | None = None,
    ) -> None:
        self.event = event
        self.positions = positions
        self.values = values
        #: The rules at positions below this were evaluated; the others were ruled out by their guards.
        self.asked = len(values) if asked is None else asked
        #: ``[position, message]`` of the rules that failed.
        self.errors = errors
        #: ``[position, milliseconds]`` of the rules over the budget.
        self.slow = slow
        #: An error for every rule (the event could not be evaluated at all).
        self.error = error


class _Group:
    """The rules one request asks about (``rules``), and those its answers also cover (``skipped``).

    A skipped rule's guard ruled the event out: its answer is undefined (``None``),
    placed after the asked rules' answers. ``guard`` holds the guards of the asked rules.
    """

    __slots__ = ("guard", "padding", "positions", "prefix", "rules", "skipped", "subgroups")

    def __init__(
        self, rules: tuple[WorkerRule, ...], skipped: tuple[WorkerRule, ...] = (), guard: GroupGuard | None = None
    ) -> None:
        self.rules = rules
        self.skipped = skipped
        self.positions = {rule: i for i, rule in enumerate((*rules, *skipped))}
        self.prefix = eval_prefix(tuple(rule.index for rule in rules))
        self.padding: list[Any] = [None] * len(skipped)
        self.guard = guard
        self.subgroups: dict[tuple[WorkerRule, ...], _Group] = {}

    def without(self, skipped: tuple[WorkerRule, ...]) -> _Group:
        """This group without ``skipped`` (their answers ``None``)."""
        group = self.subgroups.get(skipped)
        if group is None:
            rest = tuple(rule for rule in self.rules if rule not in skipped)
            group = self.subgroups[skipped] = _Group(rest, (*self.skipped, *skipped))
        return group


def _guarded_group(rules: Sequence[WorkerRule], name: str | None) -> _Group:
    """A group of ``rules`` with their guards, specialised for events called ``name`` (``None``: any)."""
    asked: list[WorkerRule] = []
    never: list[WorkerRule] = []
    guards: list[tuple[WorkerRule, Guard]] = []
    for rule in rules:
        guard = rule.guard
        special = guard.for_event(name) if guard is not None and name is not None else guard
        if special is False:
            never.append(rule)  # no body of the rule is for this event
            continue
        asked.append(rule)
        if isinstance(special, Guard):
            guards.append((rule, special))
    return _Group(tuple(asked), tuple(never), GroupGuard(tuple(guards)) if guards else None)


class WorkerRule(Rule):
    """A signature loaded in the worker, with its budget and whether it is switched off."""

    __slots__ = (
        "__weakref__",
        "_single",
        "budget",
        "disabled",
        "evaluations",
        "file",
        "guard",
        "index",
        "namespace",
        "pending",
        "sig_id",
    )

    def __init__(self, namespace: Namespace, index: int, sig_id: str, file: Path, guard: Guard | None = None) -> None:
        self.namespace = namespace
        self.index = index
        self.sig_id = sig_id
        self.file = file
        #: What the rule's leading conditions rule out, decided here (:mod:`.guards`); ``None``: always asked.
        self.guard = guard
        self.budget = TimeBudget(namespace.client.budget_ms)
        self.evaluations = 0
        self.disabled = False
        self.pending: RegoSignatureDisabled | None = None
        self._single = _guarded_group((self,), None)

    def __repr__(self) -> str:
        return f"<WorkerRule {self.sig_id} #{self.index}{' disabled' if self.disabled else ''}>"

    def evaluate(self, event: Event) -> Any:
        if self.disabled:
            return self._disabled()
        answers = self.namespace.client.cache
        position = None
        if answers is not None and answers.event is event:
            position = answers.positions.get(self)
        if position is None:
            answers = self.namespace.answers(event, self)
            if self.disabled:
                return self._disabled()
            position = answers.positions[self]
        if position >= answers.asked:  # ruled out by its guard: undefined, not an evaluation
            return None
        self.evaluations += 1
        if answers.error is not None:
            raise answers.error
        value = answers.values[position]
        if answers.errors is not None:
            for where, message in answers.errors:
                if where == position:
                    raise RegoEvaluationError(message)
        if answers.slow is not None:
            for where, milliseconds in answers.slow:
                if where == position:
                    self._overrun(event, milliseconds, value)
        return value

    def _disabled(self) -> None:
        error, self.pending = self.pending, None
        if error is not None:
            raise error

    def _overrun(self, event: Event, milliseconds: float, value: Any) -> None:
        log = self.namespace.log
        budget_ms = self.budget.seconds * 1000
        where = f" at {event.location}" if event.location else ""
        log.debug(
            "%s: evaluating a %s event%s took %.1f ms, over the %g ms budget",
            self.sig_id,
            event.name,
            where,
            milliseconds,
            budget_ms,
        )
        if self.budget.overrun(self.evaluations):
            self.disable(None)
            raise RegoTimeBudgetExceeded(
                f"{self.budget.overruns} evaluations over the {budget_ms:g} ms budget (last {milliseconds:.1f} ms); "
                f"signature {self.sig_id} ({self.file}) disabled for this run",
                value,
            )

    def drop_guard(self) -> None:
        """Always ask the worker from now on."""
        self.guard = None
        self._single = _guarded_group((self,), None)
        self.namespace.changed()

    def disable(self, reason: str | None) -> None:
        """Switch the signature off; ``reason`` is raised by its next evaluation (``None``: nothing)."""
        self.disabled = True
        self.pending = RegoSignatureDisabled(reason) if reason else None
        self.namespace.changed()

    def activate(self, selectors: Sequence[EventSelector]) -> None:
        self.namespace.active[self] = tuple(selectors)
        self.namespace.changed()

    def deactivate(self) -> None:
        if self.namespace.active.pop(self, None) is not None:
            self.namespace.changed()


class Namespace:
    """One collector's rules in a shared worker.

    :param client: the worker.
    :param log: where budget overruns are logged (debug level).
    """

    def __init__(self, client: WorkerClient, log: Any) -> None:
        self.client = client
        self.log = log
        self.id = client.new_namespace()
        self.active: dict[WorkerRule, tuple[EventSelector, ...]] = {}
        self._groups: dict[tuple[str, str, str], _Group] = {}
        #: Each loaded signature's package (a helper module in it takes its guard away).
        self.packages: weakref.WeakKeyDictionary[WorkerRule, str] = weakref.WeakKeyDictionary()
        #: Guards are used (not when a helper module adds to pytracee's helper package).
        self.guards_on = True
        weakref.finalize(self, client.release, self.id)

    # --- loading ----------------------------------------------------------------------------

    def load_helper(self, path: Path, source: str) -> None:
        """Add a helper module for the namespace's signatures.

        :raises RuleFileError: for anything wrong with it.
        """
        package = self._load(path, "helper", str(path), source)
        if package == HELPERS_PACKAGE:  # the helpers the guards read are not only ours any more
            self.guards_on = False
        for rule, rule_package in self.packages.items():
            if package in (rule_package, HELPERS_PACKAGE):
                rule.drop_guard()
        self.changed()

    def load_signature(self, path: Path, source: str) -> tuple[WorkerRule, Any]:
        """Load a signature file: its rule and ``(metadata, selectors, syntax)``.

        :raises RuleFileError: for anything wrong with it.
        """
        index = self.client.new_index()
        info, (package, program) = self._load(path, "signature", str(path), source, index)
        guard = Guard(program) if program is not None and self.guards_on else None
        rule = WorkerRule(self, index, info[0].id, path, guard)
        self.packages[rule] = package
        return rule, info

    def _load(self, path: Path, method: str, *args: Any) -> Any:
        try:
            return self.client.call(self.id, method, *args)
        except Stuck:
            raise RuleFileError(
                path, f"loading it took longer than {LOAD_TIMEOUT_S:g} s; refused (the Rego worker was stopped)"
            ) from None
        except WorkerError as exc:
            raise RuleFileError(path, f"{exc} while loading it; refused") from None

    # --- evaluation ---------------------------------------------------------------------------

    def changed(self) -> None:
        """Active or disabled signatures changed: recompute the groups."""
        self._groups.clear()
        self.client.cache = None

    def _group(self, event: Event) -> _Group:
        raw = event.raw
        key = (event.source, raw["eventName"], origin_of(raw))
        group = self._groups.get(key)
        if group is None:
            source, name, origin = key
            group = _guarded_group(
                [
                    rule
                    for rule, selectors in self.active.items()
                    if not rule.disabled
                    and any(
                        s.source == source and s.name in (name, ANY) and s.origin in (origin, ANY) for s in selectors
                    )
                ],
                name,
            )
            self._groups[key] = group
        return group

    def answers(self, event: Event, rule: WorkerRule) -> Answers:
        """Ask the worker about ``event`` for ``rule`` and the other active rules it concerns."""
        group = self._group(event)
        if rule not in group.positions:
            group = rule._single
        try:
            payload = event_json(event)  # first: an event Rego cannot take is an error, guarded or not
        except RegoInputError as exc:
            answers = Answers(event, group.positions, [None] * len(group.positions), error=exc)
        else:
            if group.guard is not None:
                skipped = group.guard.ruled_out(event)
                if skipped:
                    group = group.without(skipped)
            if group.rules:
                answers = self._ask(event, group, payload)
            else:  # every guard ruled the event out: nothing to ask
                answers = Answers(event, group.positions, group.padding, asked=0)
        self.client.cache = answers
        return answers

    def _ask(self, event: Event, group: _Group, payload: bytes) -> Answers:
        client = self.client
        try:
            body = client.evaluate(group.prefix, payload)
        except (Stuck, Died) as exc:
            return self._recover(event, group, payload, exc)
        values, errors, slow = orjson.loads(body)
        if group.padding:
            values += group.padding
        return Answers(event, group.positions, values, errors, slow, asked=len(group.rules))

    def _recover(self, event: Event, group: _Group, payload: bytes, exc: WorkerError) -> Answers:
        """The worker hung or died on ``group``: blame, disable, and ask again for the others."""
        client = self.client
        state = client.culprit_state()
        culprit = next((rule for rule in group.rules if rule.index == state), None)
        if client.broken is not None:
            for rule in group.rules:
                rule.disable(client.broken)
            return Answers(event, group.positions, [None] * len(group.positions), asked=len(group.rules))
        if culprit is not None:
            culprit.disable(self._blame(culprit, event, exc))
        elif state == STATE_GROUP and len(group.rules) > 1:
            return self._one_by_one(event, group, payload)
        else:
            what = "reading the event" if state == STATE_INPUT else "with the event"
            error = RegoInputError(f"{_what_happened(exc, client)} {what}; the event is not evaluated by Rego")
            return Answers(event, group.positions, [None] * len(group.positions), error=error, asked=len(group.rules))
        rest = tuple(rule for rule in group.rules if not rule.disabled)
        merged = [None] * len(group.positions)
        errors: list[Any] = []
        slow: list[Any] = []
        if rest:
            answers = self._ask(event, _Group(rest), payload)
            _merge(group, rest, answers, merged, errors, slow)
        return Answers(event, group.positions, merged, errors or None, slow or None, asked=len(group.rules))

    def _one_by_one(self, event: Event, group: _Group, payload: bytes) -> Answers:
        merged = [None] * len(group.positions)
        errors: list[Any] = []
        slow: list[Any] = []
        for rule in group.rules:
            if not rule.disabled:
                _merge(group, (rule,), self._ask(event, rule._single, payload), merged, errors, slow)
        return Answers(event, group.positions, merged, errors or None, slow or None, asked=len(group.rules))

    def _blame(self, rule: WorkerRule, event: Event, exc: WorkerError) -> str:
        where = f" at {event.location}" if event.location else ""
        client = self.client
        if isinstance(exc, Stuck):
            happened = (
                f"evaluating a {event.name} event{where} took longer than {client.hard_timeout:g} s "
                f"({HARD_TIMEOUT_FACTOR} times the {client.budget_ms:g} ms budget): the Rego worker was stopped"
            )
        else:
            happened = f"{exc} while evaluating a {event.name} event{where}"
        return f"{happened}; signature {rule.sig_id} ({rule.file}) disabled for this run"


def _what_happened(exc: WorkerError, client: WorkerClient) -> str:
    if isinstance(exc, Stuck):
        return f"the Rego worker was stopped after {client.hard_timeout:g} s"
    return str(exc)


def _merge(
    group: _Group, rules: Sequence[WorkerRule], answers: Answers, values: list[Any], errors: list[Any], slow: list[Any]
) -> None:
    """Copy ``answers`` for ``rules`` into lists laid out for ``group``."""
    for rule in rules:
        position = group.positions[rule]
        if rule.disabled and rule not in answers.positions:
            continue
        local = answers.positions[rule]
        if answers.error is not None:
            errors.append([position, str(answers.error)])
            continue
        values[position] = answers.values[local]
        for where, message in answers.errors or _NO_ERRORS:
            if where == local:
                errors.append([position, message])
        for where, milliseconds in answers.slow or _NO_ERRORS:
            if where == local:
                slow.append([position, milliseconds])
