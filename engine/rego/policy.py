"""Reading one ``.rego`` file: syntax, safety checks, metadata and selectors.

A file is parsed by regorus (whatever backend evaluates it later) into a
:class:`RegoModule`:

* **Syntax.** Rego has two dialects: pre-1.0 ("v0", Tracee's files:
  ``tracee_match { ... }``, ``p[x] { ... }``) and 1.0 ("v1": ``if``,
  ``contains``). A v0 engine reads a plain v1 file *without an error* and the
  result matches every event (``tracee_match if {...}`` becomes two rules, an
  unconditional ``tracee_match`` and one named ``if``). So each file is parsed
  in a v1-mode engine first: if it parses, it is v1; if it fails with "`if`
  keyword is required", it is v0 and is parsed again in v0 mode, where any
  warning (such as "`if` will be treated as identifier") or a rule named
  ``if``/``contains`` refuses it; any other error is a syntax error.
* **Sandbox.** Built-ins that reach the network, the file system or the host
  (:data:`FORBIDDEN_BUILTINS`) are refused wherever the file names them (in a
  call, or as the value of a ``with``), found in the parsed module, so comments
  and strings do not count.
* **Limits.** Brackets nested too deep (before parsing: regorus's parser is
  exponential in them) and ``numbers.range`` calls with huge constant bounds
  are refused (:mod:`.limits`).
* **Contents.** The package and the rules it defines, with their lines.

:func:`metadata_from` and :func:`selectors_from` turn the evaluated
``__rego_metadoc__`` and ``tracee_selected_events`` into the engine's types.
Every problem is a :class:`~pytracee.engine.errors.RuleFileError` naming the
file and, when known, the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import RuleFileError
from ..findings import SignatureMetadata
from ..selectors import ORIGINS, EventSelector, SelectorError
from .limits import SourceTooComplex, check_ast, check_source

__all__ = [
    "FORBIDDEN_BUILTINS",
    "RegoModule",
    "clean_error",
    "error_line",
    "error_text",
    "metadata_from",
    "module_ast",
    "parse_module",
    "read_source",
    "regorus_engine",
    "selectors_from",
]

#: Built-ins a signature may not use, and what they would reach.
FORBIDDEN_BUILTINS: Final = {
    "http.send": "the network",
    "net.lookup_ip_addr": "the network (DNS)",
    "opa.runtime": "the host environment",
}
METADOC: Final = "__rego_metadoc__"
SELECTED_EVENTS: Final = "tracee_selected_events"
MATCH: Final = "tracee_match"
_V0_MARKER: Final = "`if` keyword is required"
#: Rules a v0 parse produces from v1 keywords it does not know.
_MISPARSED_RULE_NAMES: Final = ("if", "contains")


@dataclass(frozen=True, slots=True)
class RegoModule:
    """One parsed ``.rego`` file.

    :param name: the module name given to the engines (the path as text); engine
        messages locate errors with it.
    :param syntax: ``"v0"`` or ``"v1"``.
    :param portable: it imports ``rego.v1``, so it also reads correctly in a v0 engine.
    :param package: the package as a rule path, e.g. ``"data.tracee.TRC_2"``.
    :param rules: rule name -> line of its first definition.
    :param v0_line: for v0 files, the first line that is not v1 syntax.
    """

    path: Path
    name: str
    source: str
    syntax: str
    portable: bool
    package: str
    package_line: int
    rules: Mapping[str, int]
    v0_line: int | None = None

    def rule_line(self, rule: str) -> int:
        """The line defining ``rule``, or the package line when it is not defined."""
        return self.rules.get(rule, self.package_line)


# --- regorus ------------------------------------------------------------------------------

_backtraces_primed = False


def regorus_engine(v0: bool = False) -> Any:
    """A new regorus engine (``v0``: in pre-1.0 mode), with Rust backtraces off.

    regorus appends a Rust stack backtrace to every error message when
    ``RUST_BACKTRACE`` is set, and capturing it is slow. Rust reads the variable
    once, at the first error of the process, so the first engine provokes an
    error with the variable set to 0 and then restores the environment.
    """
    global _backtraces_primed
    import regorus

    if not _backtraces_primed:
        _backtraces_primed = True
        saved = {name: os.environ.get(name) for name in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        os.environ["RUST_BACKTRACE"] = os.environ["RUST_LIB_BACKTRACE"] = "0"
        try:
            with contextlib.suppress(RuntimeError):  # the point: an error, with backtraces off
                regorus.Engine().add_policy("prime.rego", "package")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    engine = regorus.Engine()
    if v0:
        engine.set_rego_v0(True)
    return engine


_LOCATION_RE: Final = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")


def error_line(message: str, name: str) -> int | None:
    """The line of module ``name`` an engine error points at (regorus ``--> f:l:c``, OPA ``f:l:``)."""
    match = re.search(re.escape(name) + r":(\d+)", message)
    return int(match.group(1)) if match else None


def clean_error(message: str) -> str:
    """An engine error on one line: ``file:line:col: what``, without source excerpts or backtraces.

    regorus writes ``\\n--> f:l:c\\n  |\\n3 | source\\n  |   ^\\nerror: what``;
    OPA ``N errors occurred: f:l: rego_x_error: what``.
    """
    message = message.split("\nStack backtrace:", 1)[0].strip()
    location = _LOCATION_RE.search(message)
    if location:
        what = [
            line.split(":", 1)[1].strip() for line in message.splitlines() if re.match(r"\s*(error|warning):", line)
        ]
        where = f"{location['file']}:{location['line']}:{location['col']}"
        rest = message[: location.start()].strip()
        text = "; ".join(what) or message.splitlines()[-1].strip()
        return f"{where}: {text}" + (f" ({rest})" if rest else "")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(lines)


def error_text(message: str) -> str:
    """The explanation part of an engine error, without locations and error-class prefixes."""
    text = clean_error(message)
    prefixes = (
        r"\S+?\.rego:\d+(:\d+)?:\s*",
        r"\S+?:\d+:\d+:\s*",
        r"bundle activation failed:\s*",
        r"\w+_error:\s*",
        r"\d+ errors? occurred:\s*",
    )
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            stripped = re.sub("^" + prefix, "", text)
            if stripped != text:
                text, changed = stripped, True
    return text


# --- parsing --------------------------------------------------------------------------------


def parse_module(path: Path, source: str | None = None) -> RegoModule:
    """Parse ``path`` (or ``source``), detect its syntax and check it.

    :raises RuleFileError: unreadable, not Rego, misparsed v0, forbidden built-ins, over a limit.
    """
    if source is None:
        source = read_source(path)
    name = str(path)
    try:
        check_source(source)
    except SourceTooComplex as exc:
        raise RuleFileError(path, str(exc), exc.line) from None
    syntax, v0_line = "v1", None
    try:
        ast = _parse(name, source, v0=False)
    except RuntimeError as exc:
        if _V0_MARKER not in str(exc):
            raise _syntax_error(path, name, str(exc)) from None
        syntax, v0_line = "v0", error_line(str(exc), name)
        with _captured_stderr() as warnings:
            try:
                ast = _parse(name, source, v0=True)
            except RuntimeError as exc0:
                raise _syntax_error(path, name, str(exc0)) from None
        _refuse_misparse(path, name, ast, warnings())
        if warnings():  # not a parser warning: someone else's output, pass it on
            os.write(2, warnings().encode())
    package, package_line = _package(ast)
    if not package:
        raise RuleFileError(path, "no package declaration", 1)
    rules = _rules(ast)
    portable = syntax == "v1" and any(_ref_name(imp.get("refr")) == "rego.v1" for imp in ast.get("imports", ()))
    _refuse_forbidden(path, ast)
    try:
        check_ast(ast.get("rules", []), _ref_name)
    except SourceTooComplex as exc:
        raise RuleFileError(path, str(exc), exc.line) from None
    return RegoModule(
        path=path,
        name=name,
        source=source,
        syntax=syntax,
        portable=portable,
        package=f"data.{package}",
        package_line=package_line,
        rules=rules,
        v0_line=v0_line,
    )


def read_source(path: Path) -> str:
    """The text of a rule file.

    :raises RuleFileError: when it cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(path, f"cannot read: {exc}") from None


def module_ast(module: RegoModule) -> dict[str, Any]:
    """The regorus AST of a module that parsed before (in its own syntax)."""
    return _parse(module.name, module.source, v0=module.syntax == "v0")


def _parse(name: str, source: str, *, v0: bool) -> dict[str, Any]:
    engine = regorus_engine(v0=v0)
    engine.add_policy(name, source)
    modules = json.loads(engine.get_ast_as_json())
    ast: dict[str, Any] = modules[0]["ast"]
    return ast


def _syntax_error(path: Path, name: str, message: str) -> RuleFileError:
    return RuleFileError(path, f"Rego syntax error: {error_text(message)}", error_line(message, name))


@contextmanager
def _captured_stderr() -> Iterator[Any]:
    """Capture what native code writes to file descriptor 2 (regorus prints v0 warnings there)."""
    captured: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to capture
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: "".join(captured)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _refuse_misparse(path: Path, name: str, ast: dict[str, Any], warnings: str) -> None:
    for rule_name, line in _rules(ast).items():
        if rule_name in _MISPARSED_RULE_NAMES:
            raise RuleFileError(
                path,
                f"mixes Rego v1 keywords into a pre-1.0 (v0) file: `{rule_name}` would be read as a rule name "
                f"(`tracee_match if {{...}}` would then match every event); write every rule in v1 syntax "
                f"(`if`, `contains`, or `import rego.v1`) or import future.keywords",
                line,
            )
    if "warning:" in warnings:
        text = clean_error(warnings)
        raise RuleFileError(
            path, f"refused: the pre-1.0 (v0) parser warns: {error_text(text)}", error_line(warnings, name)
        )


# --- the parsed module --------------------------------------------------------------------


def _package(ast: dict[str, Any]) -> tuple[str, int]:
    package = ast.get("package") or {}
    return _ref_name(package.get("refr")), _line(package)


def _rules(ast: dict[str, Any]) -> dict[str, int]:
    rules: dict[str, int] = {}
    for rule in ast.get("rules", ()):
        kind, body = next(iter(rule.items()))
        if kind == "Spec":
            head = body.get("head") or {}
            head_body: Any
            _, head_body = next(iter(head.items()), (None, {}))
            refr = (head_body or {}).get("refr")
        elif kind == "Default":
            refr = body.get("refr")
        else:
            continue
        name = _ref_name(refr)
        if name:
            rules.setdefault(name, _first_line(rule))
    return rules


def _ref_name(node: Any) -> str:
    """``a.b.c`` for a chain of Var/RefDot (and RefBrack with string keys) nodes, else ``""``."""
    if not isinstance(node, dict) or len(node) != 1:
        return ""
    kind, body = next(iter(node.items()))
    if kind == "Var":
        return str(body.get("value", ""))
    if kind == "RefDot":
        base = _ref_name(body.get("refr"))
        field = body.get("field")
        key = field[1] if isinstance(field, list) and len(field) == 2 else None
        return f"{base}.{key}" if base and isinstance(key, str) else ""
    if kind == "RefBrack":
        base = _ref_name(body.get("refr"))
        index = body.get("index")
        if base and isinstance(index, dict) and "String" in index:
            return f"{base}.{index['String'].get('value')}"
    return ""


def _line(node: Any) -> int:
    span = node.get("span") if isinstance(node, dict) else None
    return int(span["line"]) if isinstance(span, dict) and "line" in span else 0


def _first_line(node: Any) -> int:
    """The smallest line number in a subtree (the line where a rule starts)."""
    lines = [line for line in _all_lines(node) if line > 0]
    return min(lines) if lines else 0


def _all_lines(node: Any) -> Iterator[int]:
    if isinstance(node, dict):
        span = node.get("span")
        if isinstance(span, dict) and "line" in span:
            yield int(span["line"])
        for value in node.values():
            yield from _all_lines(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_lines(value)


def _refs(node: Any) -> Iterator[tuple[str, int]]:
    """Every dotted name referenced in a subtree, with its line (``http.send``, ``input.args`` ...)."""
    if isinstance(node, dict):
        if len(node) == 1:
            kind, body = next(iter(node.items()))
            if kind in ("RefDot", "RefBrack"):
                name = _ref_name(node)
                if name:
                    yield name, _line(body)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _refuse_forbidden(path: Path, ast: dict[str, Any]) -> None:
    for name, line in _refs(ast.get("rules", [])):
        if name in FORBIDDEN_BUILTINS:
            raise RuleFileError(
                path,
                f"{name} is not allowed: signatures may not reach {FORBIDDEN_BUILTINS[name]} "
                f"(refused built-ins: {', '.join(FORBIDDEN_BUILTINS)})",
                line,
            )


# --- metadata and selectors ------------------------------------------------------------------


def metadata_from(module: RegoModule, doc: Any) -> SignatureMetadata:
    """``__rego_metadoc__`` as :class:`SignatureMetadata`.

    Keys as Tracee's: ``id`` (required), ``version``, ``name``, ``eventName``,
    ``description``, ``tags``, ``properties``.
    """
    path, line = module.path, module.rule_line(METADOC)
    if METADOC not in module.rules:
        raise RuleFileError(path, f"no {METADOC}: a signature declares its metadata (id, name, ...) there", line)
    if doc is None:
        raise RuleFileError(path, f"{METADOC} is undefined", line)
    if not isinstance(doc, dict):
        raise RuleFileError(path, f"{METADOC} must be an object, not {_json_type(doc)}", line)
    sig_id = doc.get("id")
    if not isinstance(sig_id, str) or not sig_id.strip():
        raise RuleFileError(path, f'{METADOC} has no "id" (a non-empty string)', line)
    text = {}
    for key in ("version", "name", "eventName", "description"):
        value = doc.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            raise RuleFileError(path, f"{METADOC}.{key} must be a string, not {_json_type(value)}", line)
        text[key] = "" if value is None else str(value)
    tags = doc.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
        raise RuleFileError(path, f"{METADOC}.tags must be a list of strings", line)
    properties = doc.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise RuleFileError(path, f"{METADOC}.properties must be an object, not {_json_type(properties)}", line)
    return SignatureMetadata(
        id=sig_id,
        name=text["name"] or sig_id,
        version=text["version"],
        event_name=text["eventName"],
        description=text["description"],
        tags=tags,
        properties=properties,
    )


def selectors_from(module: RegoModule, value: Any) -> tuple[EventSelector, ...]:
    """``tracee_selected_events`` (a set of ``{"source", "name", "origin"}``) as selectors."""
    path, line = module.path, module.rule_line(SELECTED_EVENTS)
    if SELECTED_EVENTS not in module.rules:
        raise RuleFileError(
            path, f'no {SELECTED_EVENTS}: a signature selects events with a set of {{"source", "name", "origin"}}', line
        )
    if value is None or value == []:
        raise RuleFileError(path, f"{SELECTED_EVENTS} is empty or undefined: the signature would never run", line)
    if not isinstance(value, list):
        raise RuleFileError(path, f"{SELECTED_EVENTS} must be a set of objects, not {_json_type(value)}", line)
    selectors: dict[tuple[str, str, str], EventSelector] = {}
    for item in value:
        if not isinstance(item, dict):
            raise RuleFileError(path, f"{SELECTED_EVENTS}: selector {_show(item)} is not an object", line)
        unknown = set(item) - {"source", "name", "origin"}
        if unknown:
            raise RuleFileError(
                path, f"{SELECTED_EVENTS}: selector {_show(item)} has unknown keys {sorted(unknown)}", line
            )
        name, source, origin = item.get("name"), item.get("source", "tracee"), item.get("origin", "*")
        if not isinstance(name, str) or not name:
            raise RuleFileError(path, f'{SELECTED_EVENTS}: selector {_show(item)} has no event "name"', line)
        if not isinstance(source, str) or not source:
            raise RuleFileError(path, f'{SELECTED_EVENTS}: selector {_show(item)} has a bad "source"', line)
        if not isinstance(origin, str) or (origin not in ORIGINS and origin != "*"):
            raise RuleFileError(
                path,
                f"{SELECTED_EVENTS}: selector {_show(item)} has unknown origin {origin!r} "
                f'(expected {", ".join(ORIGINS)} or "*")',
                line,
            )
        try:
            selectors.setdefault((source, name, origin), EventSelector(name, origin, source))
        except SelectorError as exc:
            raise RuleFileError(path, f"{SELECTED_EVENTS}: {exc}", line) from None
    return tuple(selectors.values())


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
