"""Overrides of shipped rules, and applying parameters and overrides to loaded signatures.

An override changes a signature without copying it (Falco's ``override``)::

    overrides:
      - rule: TRC-1016
        severity: low                  # info, low, medium, high, critical, or 0-4
      - rule: TRC-108
        enabled: true                  # on, though off by default (false: off)
      - rule: TRC-1016
        params: {web_servers: [caddy]}
        override: {params: append}     # append to the lists (default: replace)
      - rule: TRC-107
        exceptions:
          - {name: runc, match: {processName: runc}}
        override: {exceptions: replace}   # drop the signature's other exceptions (default: append)

:func:`configure_signatures` resolves every signature's parameters (defaults, the
``params:`` section, then the overrides in order), applies severities and reads
the selectors again (they may depend on the parameters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..dispatch import LoadedSignature, load_signature
from ..params import ParamError, Params, declared_params, resolve_params
from ..signature import SignatureDefinitionError
from .exceptions import ExceptionRule, parse_exceptions

if TYPE_CHECKING:
    from .config import ConfigFile, Node, Problem

__all__ = ["SEVERITIES", "Override", "Settings", "configure_signatures", "parse_overrides", "severity_value"]

#: Severity names (Tracee's 0-4 scale).
SEVERITIES: Final = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_KEYS: Final = frozenset({"rule", "enabled", "severity", "params", "exceptions", "override"})
_MODES: Final = ("append", "replace")


def severity_value(value: Any) -> int | None:
    """A severity name or number as Tracee's 0-4, or ``None`` when it is neither."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in SEVERITIES:
            return SEVERITIES[text]
        return int(text) if text.isascii() and text.isdigit() and int(text) <= 4 else None  # not "²", not "9"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
        return value
    return None


@dataclass
class Override:
    """One override entry (see the module's documentation)."""

    rule: str
    where: str
    line: int
    enabled: bool | None = None
    severity: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    params_mode: str = "replace"
    exceptions: list[ExceptionRule] = field(default_factory=list)
    exceptions_mode: str = "append"


def parse_overrides(node: Node, where: str, problems: list[Problem]) -> list[Override]:
    """The overrides of a YAML list; problems (with lines) go to ``problems``."""
    from .config import Problem

    if not isinstance(node.value, list):
        problems.append(Problem(where, node.line, "overrides: expected a list"))
        return []
    overrides = []
    for item in node.value:
        before = len(problems)
        override = _parse_override(item, where, problems)
        if override is not None and len(problems) == before:
            overrides.append(override)
    return overrides


def _parse_override(item: Node, where: str, problems: list[Problem]) -> Override | None:
    from .config import Problem

    if not isinstance(item.value, dict):
        problems.append(Problem(where, item.line, "an override is a mapping (rule, enabled, severity, ...)"))
        return None
    keys = item.value
    unknown = set(keys) - _KEYS
    if unknown:
        problems.append(Problem(where, item.line, f"override: unknown keys {sorted(unknown)}"))
        return None
    rule = keys.get("rule")
    if rule is None or not isinstance(rule.value, str) or not rule.value:
        problems.append(Problem(where, item.line, "an override needs 'rule': the signature ID"))
        return None
    override = Override(rule.value, where, item.line)
    if "enabled" in keys:
        if not isinstance(keys["enabled"].value, bool):
            problems.append(Problem(where, keys["enabled"].line, "enabled: true or false"))
        override.enabled = bool(keys["enabled"].value)
    if "severity" in keys:
        override.severity = severity_value(keys["severity"].value)
        if override.severity is None:
            problems.append(Problem(where, keys["severity"].line, f"severity: one of {', '.join(SEVERITIES)} or 0-4"))
    if "override" in keys:
        _modes(override, keys["override"], where, problems)
    if "params" in keys:
        if not isinstance(keys["params"].value, dict):
            problems.append(Problem(where, keys["params"].line, "params: a mapping of parameter values"))
        else:
            override.params = {k: v.plain() for k, v in keys["params"].value.items()}
    if "exceptions" in keys:
        override.exceptions = parse_exceptions(keys["exceptions"], where, problems, signature=override.rule)
    return override


def _modes(override: Override, modes: Node, where: str, problems: list[Problem]) -> None:
    from .config import Problem

    if not isinstance(modes.value, dict):
        problems.append(Problem(where, modes.line, "override: a mapping of params/exceptions to append|replace"))
        return
    for key, mode in modes.value.items():
        if key not in ("params", "exceptions") or mode.value not in _MODES:
            problems.append(Problem(where, mode.line, f"override.{key}: params or exceptions, append or replace"))
        else:
            setattr(override, f"{key}_mode", mode.value)


@dataclass
class Settings:
    """Everything the files of a run say about signatures: parameters, overrides, exceptions.

    Built from the configuration file and the rules directories' bundle files, in that order.
    """

    files: list[ConfigFile] = field(default_factory=list)

    @property
    def overrides(self) -> list[Override]:
        """Every override, in file order."""
        return [o for f in self.files for o in f.overrides]

    def exceptions(self) -> list[ExceptionRule]:
        """The exceptions in force: the files', with the overrides' appended or replacing."""
        rules = [e for f in self.files for e in f.exceptions]
        for override in self.overrides:
            if not override.exceptions and override.exceptions_mode == "append":
                continue
            if override.exceptions_mode == "replace":
                kept = []
                for rule in rules:
                    if override.rule in rule.signatures:
                        remaining = rule.signatures - {override.rule}
                        if remaining:
                            kept.append(dataclasses.replace(rule, signatures=remaining))
                    else:
                        kept.append(rule)
                rules = kept
            rules.extend(override.exceptions)
        return rules

    def referenced_ids(self) -> set[str]:
        """Every signature ID the files name: in parameters, overrides and exceptions."""
        ids = {sig_id for f in self.files for sig_id in f.params}
        ids.update(o.rule for o in self.overrides)
        ids.update(sig_id for e in self.exceptions() for sig_id in e.signatures)
        return ids

    def _enabled_state(self) -> dict[str, bool]:
        """Signature ID -> on or off, as the last override naming it says."""
        return {o.rule: o.enabled for o in self.overrides if o.enabled is not None}

    def disabled(self) -> set[str]:
        """Signature IDs an override turns off."""
        return {sig_id for sig_id, on in self._enabled_state().items() if not on}

    def enabled(self) -> set[str]:
        """Signature IDs an override turns on (off by default otherwise)."""
        return {sig_id for sig_id, on in self._enabled_state().items() if on}


def _at(where: str, message: str) -> Problem:
    """A problem at ``where`` (``file:line`` or a name)."""
    from .config import Problem

    path, sep, line = where.rpartition(":")
    if sep and line.isdigit():
        return Problem(path, int(line), message)
    return Problem(where, None, message)


@dataclass
class _Values:
    """The parameter values the files set, per signature, and where each was set."""

    replace: dict[str, dict[str, Any]] = field(default_factory=dict)
    append: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: dict[tuple[str, str], str] = field(default_factory=dict)


def _gather_values(settings: Settings, known: Mapping[str, LoadedSignature], problems: list[Problem]) -> _Values:
    values = _Values()
    for config in settings.files:
        for sig_id, given in config.params.items():
            if sig_id not in known:
                line = next(iter(given.values())).line if given else 0
                problems.append(_at(f"{config.path}:{line}", f"params: no such signature {sig_id!r} (see --list)"))
                continue
            for name, node in given.items():
                values.replace.setdefault(sig_id, {})[name] = node.plain()
                values.where[(sig_id, name)] = config.where(node)
    for override in settings.overrides:
        if override.rule not in known:
            problems.append(_at(f"{override.where}:{override.line}", f"override: no such signature {override.rule!r}"))
            continue
        appending = override.params_mode == "append"
        target = values.append if appending else values.replace
        for name, value in override.params.items():
            earlier = values.append.get(override.rule, {}).get(name)
            if appending and isinstance(earlier, list) and isinstance(value, list):
                value = [*earlier, *value]
            elif not appending:
                values.append.get(override.rule, {}).pop(name, None)  # replaced: what came before is gone
            target.setdefault(override.rule, {})[name] = value
            values.where[(override.rule, name)] = f"{override.where}:{override.line}"
    problems.extend(
        _at(exception.where, f"exception {exception.name}: no such signature {sig_id!r}")
        for exception in settings.exceptions()
        for sig_id in sorted(exception.signatures - set(known))
    )
    return values


def configure_signatures(
    available: Sequence[LoadedSignature], settings: Settings
) -> tuple[list[LoadedSignature], list[Problem]]:
    """Resolve parameters and apply overrides; the signatures with their selectors read again.

    :returns: the signatures, and the problems (unknown IDs or parameters, bad values), with lines.
    """
    problems: list[Problem] = []
    known = {loaded.metadata.id: loaded for loaded in available}
    values = _gather_values(settings, known, problems)
    severities = {o.rule: o.severity for o in settings.overrides if o.severity is not None and o.rule in known}
    configured = []
    for loaded in available:
        sig_id = loaded.metadata.id
        declared = declared_params(loaded.signature)
        if not declared and sig_id not in values.replace and sig_id not in values.append and sig_id not in severities:
            configured.append(loaded)
            continue
        try:
            params = resolve_params(declared, values.replace.get(sig_id), values.append.get(sig_id))
        except ParamError as exc:
            where = values.where.get((sig_id, exc.name), sig_id) if exc.name else sig_id
            problems.append(_at(where, f"{sig_id}: {exc}"))
            configured.append(loaded)
            continue
        configured.append(_reconfigured(loaded, params, severities.get(sig_id), problems))
    return configured, problems


def _reconfigured(
    loaded: LoadedSignature, params: Params, severity: int | None, problems: list[Problem]
) -> LoadedSignature:
    signature = loaded.signature
    configure = getattr(signature, "configure_params", None)
    if configure is not None:
        configure(params)
    if severity is not None:
        metadata = loaded.metadata
        signature.metadata = dataclasses.replace(metadata, properties={**metadata.properties, "Severity": severity})
    try:
        return load_signature(signature, loaded.plugin, loaded.enabled_by_default)
    except (SignatureDefinitionError, ValueError, TypeError) as exc:
        problems.append(_at(loaded.metadata.id, f"the configured parameters do not work: {exc}"))
        return loaded
