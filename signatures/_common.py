"""Helpers shared by the built-in signatures.

Many Tracee signatures ask "is this event a write to path P?", where a write
is a ``security_file_open`` with a write access mode or a
``security_inode_rename`` onto P: :func:`written_path` answers it (and
:func:`opened_path` the open-only variant), :func:`write_selectors` selects
those events, and :func:`is_modification` adds "or an exec of command C".
:class:`PathRule` holds a set of paths (exact files, prefixes, suffixes) in
one place for both the check in ``on_event`` and the engine's data filters,
so the two cannot drift apart; :func:`basename_patterns` does the same for
checks on Go's ``path.Base``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pytracee.engine import Event, EventSelector, Signature, SignatureContext, select
from pytracee.engine.params import Param
from pytracee.engine.parsers import go_base

__all__ = [
    "FILE_OPEN",
    "INODE_RENAME",
    "PROC_MEM_PATTERNS",
    "PROC_MEM_RE",
    "SCHED_PROCESS_EXEC",
    "ModificationSignature",
    "PathRule",
    "basename_patterns",
    "go_base",
    "is_modification",
    "mitre_properties",
    "opened_path",
    "write_selectors",
    "written_path",
]

FILE_OPEN: Final = "security_file_open"
INODE_RENAME: Final = "security_inode_rename"
SCHED_PROCESS_EXEC: Final = "sched_process_exec"

# /proc/<pid>/mem, read by TRC-1023 and written by TRC-1024. Tracee's regex is
# `/proc/(?:\d.+)/mem$` (Go RE2: `\d` is ASCII only, `$` is the end of the text).
_PROC_MEM_SUFFIX: Final = "/mem"
PROC_MEM_RE: Final = re.compile(r"/proc/(?:\d.+)" + re.escape(_PROC_MEM_SUFFIX) + r"\Z", re.ASCII)
#: Data filter accepting every path :data:`PROC_MEM_RE` matches.
PROC_MEM_PATTERNS: Final = ["*" + _PROC_MEM_SUFFIX]


def mitre_properties(
    *,
    severity: int,
    category: str,
    technique: str,
    external_id: str,
    attack_pattern: str,
    kubernetes_technique: str = "",
) -> dict[str, Any]:
    """The ``Properties`` of a v0.9+ Tracee built-in, in Tracee's key order."""
    return {
        "Severity": severity,
        "Category": category,
        "Technique": technique,
        "Kubernetes_Technique": kubernetes_technique,
        "id": attack_pattern,
        "external_id": external_id,
    }


# --- paths -------------------------------------------------------------------------------


def basename_patterns(names: Iterable[str]) -> list[str]:
    """Data-filter patterns accepting every path whose :func:`go_base` is in ``names``.

    ``name`` and ``*/name`` cover the usual forms; ``*/`` lets any path with a
    trailing slash through, for ``on_event`` to decide.
    """
    patterns = ["*/"]
    for name in names:
        _check_literal(name)
        patterns += [name, "*/" + name]
    return patterns


@dataclass(frozen=True)
class PathRule:
    """A set of paths: exact ``files``, ``prefixes`` (Go ``strings.HasPrefix``) and ``suffixes``."""

    files: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    _files: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for literal in (*self.files, *self.prefixes, *self.suffixes):
            _check_literal(literal)
        object.__setattr__(self, "_files", frozenset(self.files))

    def matches(self, path: str) -> bool:
        """True when ``path`` is one of the files or starts with a prefix or ends with a suffix."""
        return (
            path in self._files
            or (bool(self.prefixes) and path.startswith(self.prefixes))
            or (bool(self.suffixes) and path.endswith(self.suffixes))
        )

    @property
    def patterns(self) -> list[str]:
        """The same set as engine data-filter patterns (``x``, ``x*``, ``*x``)."""
        return [*self.files, *(p + "*" for p in self.prefixes), *("*" + s for s in self.suffixes)]


def _check_literal(text: str) -> None:
    if not text or "*" in text:
        raise ValueError(f"path literal {text!r} must be non-empty and free of '*' (the data-filter wildcard)")


# --- events ------------------------------------------------------------------------------


def write_selectors(path_patterns: list[str], origin: str = "*") -> list[EventSelector]:
    """Selectors for the events :func:`written_path` reads, filtered on their path.

    ``security_file_open`` filtered on ``pathname`` and
    ``security_inode_rename`` filtered on ``new_path``.
    """
    return [
        select(FILE_OPEN, origin=origin, pathname=path_patterns),
        select(INODE_RENAME, origin=origin, new_path=path_patterns),
    ]


def opened_path(event: Event, *, write: bool) -> str | None:
    """The pathname of a ``security_file_open`` opening for writing (``write=True``) or reading.

    ``None`` when the access mode does not fit and for any other event.
    """
    if event.name != FILE_OPEN:
        return None
    pathname = event.str_arg("pathname")
    if event.is_file_write() if write else event.is_file_read():
        return pathname
    return None


def written_path(event: Event) -> str | None:
    """The path an event writes: the pathname of a write-open, the new path of a rename.

    ``None`` for an open without write access and for any other event.
    """
    if event.name == INODE_RENAME:
        return event.str_arg("new_path")
    return opened_path(event, write=True)


def is_modification(event: Event, paths: PathRule, commands: frozenset[str] = frozenset()) -> bool:
    """True for a write to one of ``paths``, or an exec of a program named in ``commands``.

    The shape of Tracee's sudoers, rc.d and cron signatures; the program name
    is the last element of the exec's ``pathname``.
    """
    if event.name == SCHED_PROCESS_EXEC:
        return bool(commands) and go_base(event.str_arg("pathname")) in commands
    path = written_path(event)
    return path is not None and paths.matches(path)


class ModificationSignature(Signature):
    """A write to one of a set of paths, or an exec of one of a set of commands (sudoers, rc.d, cron).

    Subclasses set ``paths`` and ``commands``, the defaults of the ``files``,
    ``dirs``, ``suffixes`` and ``commands`` parameters; selectors and checks follow
    the configured values.
    """

    paths: PathRule = PathRule()
    commands: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameters = modification_parameters(cls.paths, cls.commands)

    def _configured(self) -> tuple[PathRule, frozenset[str]]:
        params = self.params
        rule = PathRule(files=tuple(params.files), prefixes=tuple(params.dirs), suffixes=tuple(params.suffixes))
        return rule, frozenset(params.commands)

    def get_selected_events(self) -> Sequence[EventSelector]:
        rule, commands = self._configured()
        selectors = write_selectors(rule.patterns) if rule.patterns else []
        if commands:
            selectors.append(select(SCHED_PROCESS_EXEC, pathname=basename_patterns(sorted(commands))))
        return selectors

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self._rule, self._commands = self._configured()

    def on_event(self, event: Event) -> None:
        if is_modification(event, self._rule, self._commands):
            self.emit(event)


def modification_parameters(paths: PathRule, commands: Iterable[str]) -> Mapping[str, Param]:
    """The parameters of a :class:`ModificationSignature` with these defaults."""
    return {
        "files": Param(list(paths.files), "files whose modification is reported (exact paths)", "list[str]"),
        "dirs": Param(list(paths.prefixes), "path prefixes (directories) whose modification is reported", "list[str]"),
        "suffixes": Param(list(paths.suffixes), "path suffixes whose modification is reported", "list[str]"),
        "commands": Param(sorted(commands), "programs whose execution is reported (by file name)", "list[str]"),
    }
