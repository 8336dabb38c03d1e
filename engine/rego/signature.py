"""A Rego file as a signature: :class:`RegoSignature`.

Its metadata and selectors were read from the file at load time
(``__rego_metadoc__``, ``tracee_selected_events``); per event it asks its
backend for ``tracee_match`` and reports, as Tracee does:

* ``true``: a finding without data;
* a non-empty object: a finding with that object as data;
* anything else (undefined, ``false``, an empty object, a string, ...): nothing.
  A value that is neither a boolean nor an object is logged once, since it is
  most likely a mistake in the policy.

Parameters declared in ``__rego_metadoc__.params`` (``{"shells": {"default": [...],
"description": "..."}}``) are read by the policy as ``data.config.<ID>.<name>`` (the
ID with ``-`` as ``_``: ``data.config.ACME_3.shells``); their values in force are
added to the worker as a module ``package config.<ID>`` when the signature starts.

Several ``tracee_match`` bodies are OR-ed by Rego itself. Like Tracee's Rego
signatures these are stateless: signals are ignored.

The policy runs in the Rego worker process (:mod:`.rules`, :mod:`.client`).
A failure on one event (an evaluation error, an event Rego cannot take) is
an exception for the engine to count; a signature that overruns its time
budget, hangs or kills the worker is switched off with one exception, after
which it is silent (:attr:`RegoSignature.disabled`). The finding of the
evaluation that overran the budget is still reported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..events import Event
from ..findings import SignatureMetadata
from ..params import Param, Params
from ..selectors import EventSelector
from ..signature import Signature, SignatureContext
from .rules import RegoTimeBudgetExceeded, Rule

__all__ = ["RegoSignature"]

log = logging.getLogger("pytracee.rego")


class RegoSignature(Signature):
    """A signature defined by a ``.rego`` file in Tracee's conventions.

    :param metadata: from ``__rego_metadoc__``.
    :param selectors: from ``tracee_selected_events``.
    :param rule: the file's ``tracee_match`` in the session's backend.
    :param path: the file.
    :param syntax: ``"v0"`` or ``"v1"``.
    """

    language = "rego"

    def __init__(
        self,
        metadata: SignatureMetadata,
        selectors: Sequence[EventSelector],
        rule: Rule,
        path: Path,
        syntax: str = "v1",
        parameters: Mapping[str, Param] | None = None,
    ) -> None:
        self.metadata = metadata
        self.parameters = dict(parameters or {})
        self.selected_events = tuple(selectors)
        self.rule = rule
        self.path = path
        self.syntax = syntax
        self._evaluate = rule.evaluate
        self._odd_value_logged = False
        self._installed: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<RegoSignature {self.metadata.id} from {self.path}>"

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self.install_params()
        self.rule.activate(self.selected_events)

    def install_params(self) -> None:
        """Give the policy its parameters (``data.config.<ID>``); done once, when the signature starts.

        :raises RuntimeError: when other values were installed before (a worker cannot replace them).
        """
        namespace = getattr(self.rule, "namespace", None)
        if not self.parameters or namespace is None:
            return
        values = dict(self.params)
        if self._installed is not None:
            if self._installed != values:
                raise RuntimeError(f"{self.metadata.id}: its parameters were installed with other values already")
            return
        package = config_package(self.metadata.id)
        namespace.load_helper(Path(f"<parameters of {self.metadata.id}>"), params_module(package, self.params))
        self._installed = values

    def close(self) -> None:
        self.rule.deactivate()
        budget = getattr(self.rule, "budget", None)
        if budget is not None and budget.overruns and not self.disabled:
            log.info(
                "%s: %d evaluations over the %g ms budget", self.metadata.id, budget.overruns, budget.seconds * 1000
            )

    @property
    def disabled(self) -> bool:
        """Switched off for the rest of the run (over its budget, or it hung or killed the worker)."""
        return bool(getattr(self.rule, "disabled", False))

    def on_event(self, event: Event) -> None:
        try:
            result = self._evaluate(event)
        except RegoTimeBudgetExceeded as exc:  # disabled now; this evaluation still counts
            self._report(event, exc.value)
            raise
        if result is None or result is False:
            return
        if result is True:
            self.emit(event)
        elif type(result) is dict:
            if result:
                self.emit(event, result)
        else:
            self._odd_value(result)

    def _report(self, event: Event, result: Any) -> None:
        if result is True:
            self.emit(event)
        elif type(result) is dict and result:
            self.emit(event, result)

    def _odd_value(self, value: Any) -> None:
        if not self._odd_value_logged:
            self._odd_value_logged = True
            log.warning(
                "%s (%s): tracee_match is %s, neither a boolean nor an object; no finding (logged once)",
                self.metadata.id,
                self.path,
                type(value).__name__,
            )


def config_package(sig_id: str) -> str:
    """``config.<ID>`` with the ID made a Rego name (``TRC-1016`` -> ``config.TRC_1016``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", sig_id)
    return f"config.{'_' + name if name[:1].isdigit() else name}"


def params_module(package: str, params: Params) -> str:
    """A Rego module defining each parameter as a rule of ``package`` (JSON values are Rego terms)."""
    lines = [f"package {package}", "", "import rego.v1", ""]
    lines += [f"{name} := {orjson.dumps(value).decode()}" for name, value in params.as_json().items()]
    return "\n".join(lines) + "\n"
