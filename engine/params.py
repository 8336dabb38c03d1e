"""Signature parameters: typed, documented values a user may change without editing code.

A signature declares its parameters with their defaults; the configuration file
(``params:`` and ``overrides:``) changes them; the signature reads the resolved
values. One mechanism for the three languages:

* Python: ``parameters = {"shells": Param(["sh", "bash"], "shells to watch")}`` on
  the class, ``self.params.shells`` (or ``self.params["shells"]``) in the code;
* Rego: ``"params": {"shells": {"default": [...], "description": ...}}`` in
  ``__rego_metadoc__``, ``data.config.<ID>.shells`` in the policy (``-`` in the
  ID written ``_``, as in Tracee's package names: ``data.config.ACME_3``);
* CEL: ``params: {shells: {default: [...], description: ...}}`` in the detector,
  ``params.shells`` in its expressions.

Types are ``str``, ``int``, ``float``, ``bool``, ``list[str]`` and ``list[int]``,
inferred from the default unless given. A value of the wrong type, or a parameter
the signature does not declare, is a configuration error naming where it was set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["PARAM_TYPES", "Param", "ParamError", "Params", "declared_params", "params_from_dict", "resolve_params"]

#: The parameter types, by name.
PARAM_TYPES: Final = ("str", "int", "float", "bool", "list[str]", "list[int]")
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ParamError(ValueError):
    """A parameter declaration or value that cannot be used; ``name`` is the parameter's, if known."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return "list[int]"
        return "list[str]"
    raise ParamError(f"a parameter's default must be a string, number, boolean or list, not {type(value).__name__}")


def _coerce(kind: str, value: Any) -> Any:
    """``value`` checked against ``kind`` (an int is accepted as a float; lists become tuples)."""
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "str":
        ok = isinstance(value, str)
    else:
        item = "str" if kind == "list[str]" else "int"
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ParamError(f"expected a list ({kind}), got {_describe(value)}")
        return tuple(_coerce(item, v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value))
    if not ok:
        raise ParamError(f"expected {kind}, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


@dataclass(frozen=True)
class Param:
    """One parameter: its ``default``, a ``description`` for ``--list-params``, and its ``type``.

    :param type: one of :data:`PARAM_TYPES`; inferred from ``default`` when empty.
    """

    default: Any
    description: str = ""
    type: str = ""

    def __post_init__(self) -> None:
        kind = self.type or _infer_type(self.default)
        if kind not in PARAM_TYPES:
            raise ParamError(f"unknown parameter type {kind!r}; use one of {', '.join(PARAM_TYPES)}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "default", _coerce(kind, self.default))

    def check(self, value: Any) -> Any:
        """``value`` in this parameter's type (lists as tuples); raises :class:`ParamError`."""
        return _coerce(self.type, value)


class Params(Mapping[str, Any]):
    """A signature's resolved parameters: read-only, by key or attribute (``params.shells``)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; declared: {', '.join(self._values) or 'none'}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("parameters are read-only; set them in the configuration file")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values!r})"

    def as_json(self) -> dict[str, Any]:
        """The values as JSON types (tuples as lists), for Rego and CEL."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}


def declared_params(signature: Any) -> Mapping[str, Param]:
    """The parameters ``signature`` declares (its ``parameters`` mapping; empty when none)."""
    declared = getattr(signature, "parameters", None)
    return declared if isinstance(declared, Mapping) else {}


def params_from_dict(raw: Any, where: str = "params") -> dict[str, Param]:
    """Parameter declarations from a rule file (``{name: {default, description, type}}``).

    :raises ParamError: for a malformed declaration.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ParamError(f"{where} must be a mapping of parameter names to declarations")
    declared = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ParamError(f"{where}: parameter name {name!r} must be an identifier (letters, digits, _)")
        if not isinstance(spec, Mapping) or "default" not in spec:
            raise ParamError(f"{where}.{name} must be a mapping with a 'default' (and 'description', 'type')")
        unknown = set(spec) - {"default", "description", "type"}
        if unknown:
            raise ParamError(f"{where}.{name}: unknown keys {sorted(unknown)}")
        description = spec.get("description", "")
        kind = spec.get("type", "")
        if not isinstance(description, str) or not isinstance(kind, str):
            raise ParamError(f"{where}.{name}: description and type must be strings")
        try:
            declared[name] = Param(spec["default"], description, kind)
        except ParamError as exc:
            raise ParamError(f"{where}.{name}: {exc}") from None
    return declared


def resolve_params(
    declared: Mapping[str, Param],
    replace: Mapping[str, Any] | None = None,
    append: Mapping[str, Any] | None = None,
) -> Params:
    """The values of ``declared``: defaults, replaced by ``replace``, lists extended by ``append``.

    :raises ParamError: naming the parameter, for an undeclared name or a value of the wrong type.
    """
    values = {name: param.default for name, param in declared.items()}
    for mode, given in (("replace", replace or {}), ("append", append or {})):
        for name, value in given.items():
            param = declared.get(name)
            if param is None:
                known = ", ".join(sorted(declared)) or "none"
                raise ParamError(f"unknown parameter {name!r} (declared: {known})", name)
            try:
                checked = param.check(value)
            except ParamError as exc:
                raise ParamError(f"parameter {name!r}: {exc}", name) from None
            if mode == "append":
                if not param.type.startswith("list"):
                    raise ParamError(f"parameter {name!r} is a {param.type}: only lists can be appended to", name)
                checked = tuple(dict.fromkeys((*values[name], *checked)))
            values[name] = checked
    return Params(values)
