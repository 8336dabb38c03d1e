"""The configuration file (``--config FILE``): options, parameters, exceptions, overrides.

A YAML mapping. Every key but five is a command-line option of the command reading
it, by its long name (``rules-dir`` or ``rules_dir``); a list repeats a repeatable
option, ``true`` sets a flag. The ``tracee`` and ``tracee-rules`` sections hold the
options of one command only, so both can share a file. Options given on the command
line win over the file's::

    rules: [severity>=medium, TRC-108]
    rules-dir: [/etc/pytracee/rules]
    output-template: rawjson
    dedup-window: 60
    params:                       # signature parameters, replacing the defaults
      TRC-1016: {web_servers: [nginx, caddy]}
    exceptions:                   # findings not to report (engine/operations/exceptions.py)
      - name: runc-inherits-ld-library-path
        signatures: [TRC-107]
        match: {processName: [runc, containerd-shim]}
    overrides:                    # changes to shipped rules (engine/operations/overrides.py)
      - {rule: TRC-1016, severity: low}
    tracee-rules: {input: [-]}    # options of one command only
    tracee: {events: [openat]}

The same three sections, in an ``exceptions.yaml`` or ``overrides.yaml`` of a
rules directory, travel with its rules (:class:`BundleCollector`). The YAML is
read with the rule files' safe loader (size and alias limits); every problem is
reported with the file and line (:class:`ConfigFileError`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError
from ..hookspecs import hookimpl
from .exceptions import ExceptionRule, parse_exceptions
from .overrides import Override, parse_overrides

if TYPE_CHECKING:
    import yaml

__all__ = [
    "BUNDLE_FILES",
    "BundleCollector",
    "ConfigFile",
    "ConfigFileError",
    "Node",
    "Problem",
    "load_config",
    "merge_options",
]

#: Sections of a configuration file that are not command-line options.
SECTIONS: Final = ("params", "exceptions", "overrides")
#: Sections holding the options of one command only (the others are both commands').
COMMAND_SECTIONS: Final = ("tracee", "tracee-rules")
#: Files of a rules directory read as exceptions and overrides for its rules.
BUNDLE_FILES: Final = ("exceptions.yaml", "exceptions.yml", "overrides.yaml", "overrides.yml")
#: Options that make no sense in a file (they select the file, or act once).
_NOT_IN_FILE: Final = frozenset({"config", "help", "validate", "list", "list_events", "list_params"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a configuration or rule file, and where."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


class ConfigFileError(ConfigError):
    """A configuration file that cannot be used; ``problems`` lists every error found.

    ``partial`` holds what of the file could be read (for ``--validate`` to check it further).
    """

    def __init__(self, problems: Sequence[Problem], partial: ConfigFile | None = None) -> None:
        self.problems = list(problems)
        self.partial = partial
        super().__init__("; ".join(str(p) for p in self.problems))


class Node:
    """A YAML value with its line: ``value`` is a scalar, a ``dict[str, Node]`` or a ``list[Node]``."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line

    def plain(self) -> Any:
        """The value as plain Python data."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    @classmethod
    def build(cls, loader: yaml.SafeLoader, node: yaml.Node, where: str) -> Node:
        """Convert a composed YAML node (keys must be strings)."""
        import yaml  # loaded by read_yaml already: a lookup, not a load

        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)
            items: dict[str, Node] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node)
                if not isinstance(key, str):
                    raise ConfigFileError(
                        [Problem(where, key_node.start_mark.line + 1, f"key {key!r} is not a string")]
                    )
                if key in items:
                    raise ConfigFileError([Problem(where, key_node.start_mark.line + 1, f"duplicate key {key!r}")])
                items[key] = cls.build(loader, value_node, where)
            return cls(items, line)
        if isinstance(node, yaml.SequenceNode):
            return cls([cls.build(loader, item, where) for item in node.value], line)
        if node.tag == "tag:yaml.org,2002:value":  # a bare `=` (Falco's comps: [=, in]) is text here
            return cls(node.value, line)
        return cls(loader.construct_object(node), line)


def read_yaml(path: Path) -> Node | None:
    """The single YAML document of ``path`` (``None`` when empty).

    :raises ConfigFileError: unreadable, too large, invalid YAML, several documents.
    """
    import yaml  # loaded here, not at start-up: a run without a configuration file needs no YAML

    from ..cel.yamlload import FileTooLarge, documents, read_rule_file

    where = str(path)
    try:
        text = read_rule_file(path)
    except FileTooLarge as exc:
        raise ConfigFileError([Problem(where, None, str(exc))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Problem(where, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}")]) from None
    try:
        docs = list(documents(text))
        if len(docs) > 1:
            raise ConfigFileError([Problem(where, docs[1][1].start_mark.line + 1, "more than one YAML document")])
        if not docs:
            return None
        loader, root = docs[0]
        return Node.build(loader, root, where)
    except yaml.reader.ReaderError as exc:  # a character YAML refuses: no mark, a position in the text
        line = text.count("\n", 0, exc.position) + 1
        problem = f"invalid YAML: unacceptable character #x{exc.character:04x}: special characters are not allowed"
        raise ConfigFileError([Problem(where, line, problem)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError([Problem(where, mark.line + 1 if mark else None, f"invalid YAML: {problem}")]) from None


@dataclass
class ConfigFile:
    """What a configuration file (or a rules directory's bundle file) holds.

    :param options: option destination (``rules_dir``) -> its value node.
    :param params: signature ID -> parameter name -> value node.
    """

    path: Path
    options: dict[str, Node] = field(default_factory=dict)
    #: Options of one command only: command name -> option destination -> value node.
    command_options: dict[str, dict[str, Node]] = field(default_factory=dict)
    params: dict[str, dict[str, Node]] = field(default_factory=dict)
    exceptions: list[ExceptionRule] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)

    def where(self, node: Node) -> str:
        """``file:line`` of ``node``."""
        return f"{self.path}:{node.line}"


def load_config(path: Path, *, options_allowed: bool = True) -> ConfigFile:
    """Read and check a configuration file (or, ``options_allowed=False``, a bundle file).

    A bundle file may also be a bare list of exceptions.

    :raises ConfigFileError: with every problem found, each with its line.
    """
    root = read_yaml(path)
    config = ConfigFile(path)
    if root is None:
        return config
    where = str(path)
    if isinstance(root.value, list) and not options_allowed:
        root = Node({"exceptions": root}, root.line)
    if not isinstance(root.value, dict):
        raise ConfigFileError([Problem(where, root.line, "expected a mapping of options and sections")])
    problems: list[Problem] = []
    for key, node in root.value.items():
        if key == "params":
            config.params = _params_section(node, where, problems)
        elif key == "exceptions":
            config.exceptions = parse_exceptions(node, where, problems)
        elif key == "overrides":
            config.overrides = parse_overrides(node, where, problems)
        elif not options_allowed:
            problems.append(Problem(where, node.line, f"unknown section {key!r} (expected {', '.join(SECTIONS)})"))
        elif key in COMMAND_SECTIONS:
            if not isinstance(node.value, dict):
                problems.append(Problem(where, node.line, f"{key}: expected a mapping of that command's options"))
            else:
                config.command_options[key] = {k.replace("-", "_"): v for k, v in node.value.items()}
        else:
            config.options[key.replace("-", "_")] = node
    if problems:
        raise ConfigFileError(problems, partial=config)
    return config


def _params_section(node: Node, where: str, problems: list[Problem]) -> dict[str, dict[str, Node]]:
    if not isinstance(node.value, dict):
        problems.append(Problem(where, node.line, "params: expected a mapping of signature IDs to parameters"))
        return {}
    params: dict[str, dict[str, Node]] = {}
    for sig_id, values in node.value.items():
        if not isinstance(values.value, dict):
            problems.append(Problem(where, values.line, f"params.{sig_id}: expected a mapping of parameter values"))
            continue
        params[sig_id] = dict(values.value)
    return params


# --- options -------------------------------------------------------------------------------


def merge_options(
    parser: argparse.ArgumentParser, config: ConfigFile | None, argv: Sequence[str]
) -> argparse.Namespace:
    """Parse ``argv`` over the file's options: a flag given on the command line wins.

    :raises ConfigFileError: for an unknown option or a value the option refuses, at its line.
    """
    args = parser.parse_args(argv)
    options = {**config.options, **config.command_options.get(parser.prog, {})} if config is not None else {}
    if config is None or not options:
        return args
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    problems: list[Problem] = []
    from_file: dict[str, Any] = {}
    for dest, node in options.items():
        action = actions.get(dest)
        if action is None or dest in _NOT_IN_FILE:
            what = "cannot be set in a configuration file" if action is not None else "is not an option"
            problems.append(Problem(str(config.path), node.line, f"{dest.replace('_', '-')!r} {what}"))
            continue
        count = len(problems)
        tokens = list(_tokens(action, node, str(config.path), problems))
        if len(problems) > count:
            continue
        errors: list[str] = []
        parsed = _quiet_parse(parser, tokens, errors.append)
        if errors:
            problems.append(Problem(str(config.path), node.line, f"{action.option_strings[-1]}: {errors[0]}"))
            continue
        from_file[dest] = getattr(parsed, dest)
    if problems:
        raise ConfigFileError(problems)
    given = _given(parser, argv)
    for dest, value in from_file.items():
        if dest not in given:  # given on the command line, even as the default value, it wins
            setattr(args, dest, value)
    return args


def _given(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The destinations of the options ``argv`` sets (``parse_args`` with no defaults)."""
    saved = [(action, action.default) for action in parser._actions]
    saved_defaults = dict(parser._defaults)
    for action, _ in saved:
        action.default = argparse.SUPPRESS
    parser._defaults.clear()
    try:
        return set(vars(_quiet_parse(parser, list(argv), lambda message: None)))
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults.update(saved_defaults)


def _tokens(action: argparse.Action, node: Node, where: str, problems: list[Problem]) -> Iterator[str]:
    option = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
    if action.nargs == 0:  # a flag
        if not isinstance(node.value, bool):
            problems.append(Problem(where, node.line, f"{option} is a flag: true or false"))
            return
        if node.value:
            yield option
        return
    values = node.value if isinstance(node.value, list) else [node]
    if isinstance(node.value, list) and not isinstance(action, argparse._AppendAction):
        problems.append(Problem(where, node.line, f"{option} takes one value, not a list"))
        return
    for item in values:
        if isinstance(item.value, (dict, list)) or item.value is None:
            problems.append(Problem(where, item.line, f"{option}: expected a value, not {type(item.value).__name__}"))
            return
        text = (
            item.value
            if isinstance(item.value, str)
            else str(item.value).lower()
            if isinstance(item.value, bool)
            else str(item.value)
        )
        yield f"{option}={text}"


def _quiet_parse(parser: argparse.ArgumentParser, tokens: list[str], on_error: Any) -> argparse.Namespace:
    """``parser.parse_args(tokens)`` reporting an error to ``on_error`` instead of exiting."""

    class _Stop(Exception):
        pass

    def error(message: str) -> None:
        on_error(message)
        raise _Stop

    original = parser.error
    parser.error = error  # type: ignore[method-assign,assignment]
    try:
        return parser.parse_args(tokens)
    except _Stop:
        return argparse.Namespace()
    finally:
        parser.error = original  # type: ignore[method-assign]


# --- rules-directory bundles ------------------------------------------------------------------


class BundleCollector:
    """Claims the ``exceptions.yaml`` / ``overrides.yaml`` of rules directories (registered per session)."""

    def __init__(self) -> None:
        self.bundles: list[ConfigFile] = []
        self.problems: list[Problem] = []

    @hookimpl(tryfirst=True)
    def tracee_collect_rule_file(self, path: Path, config: Any) -> list[Any] | None:
        if path.name not in BUNDLE_FILES:
            return None
        try:
            self.bundles.append(load_config(path, options_allowed=False))
        except ConfigFileError as exc:
            self.problems.extend(exc.problems)
        return []
