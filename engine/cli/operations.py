"""Options both commands share for running on real hosts: ``--config``, ``--validate``,
``--list-params``, ``--dedup-window``, and what they print."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..dispatch import LoadedSignature
from ..errors import ConfigError, ExitStatus
from ..operations.config import ConfigFile, ConfigFileError, load_config, merge_options
from ..operations.reload import Reparse
from ..output.templates import TemplateError
from ..params import declared_params
from ..safetext import escape_text
from ..session import Session

__all__ = [
    "add_operations_options",
    "config_from_argv",
    "hangup_reloads",
    "list_params",
    "reparser",
    "report_config_error",
    "validate",
]

log = logging.getLogger("pytracee")


def add_operations_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--validate``, ``--list-params`` and ``--dedup-window`` to ``parser``."""
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="YAML file of options (long names), signature params, exceptions and overrides; "
        "options on the command line win",
    )
    group.add_argument(
        "--validate",
        action="store_true",
        help="load every rule, the configuration and the exceptions, print each problem with its file and line, "
        "and exit (non-zero on any problem); reads no events",
    )
    group.add_argument(
        "--list-params",
        action="store_true",
        help="list the signatures' parameters with their types, values in force and descriptions, and exit",
    )
    group.add_argument(
        "--dedup-window",
        metavar="SECONDS",
        type=_seconds,
        default=0.0,
        help="report a repeated finding (same signature, process or container, data) once per window, "
        "then how many repeats (default: 0, off)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds (0: off), not {text!r}")
    return value


def config_from_argv(argv: Sequence[str]) -> ConfigFile | None:
    """The ``--config`` file named in ``argv`` (read before the plugins load), or ``None``.

    :raises ConfigFileError: when it cannot be read or is invalid.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    path = pre.parse_known_args(argv)[0].config
    return load_config(path) if path is not None else None


def config_list(config: ConfigFile | None, name: str) -> list[str]:
    """A list option of the configuration file, as strings (``disable`` before plugins load)."""
    if config is None or name not in config.options:
        return []
    value = config.options[name].plain()
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def reparser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Reparse:
    """What a hot reload calls: the ``--config`` file read again, merged with ``argv`` as at start."""

    def reparse() -> tuple[ConfigFile | None, argparse.Namespace]:
        file_config = config_from_argv(argv)
        return file_config, merge_options(parser, file_config, argv)

    return reparse


@contextlib.contextmanager
def hangup_reloads(session: Session) -> Iterator[None]:
    """While in the block, SIGHUP asks ``session`` to reload (before its next event)."""
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: session.request_reload())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def report_config_error(exc: ConfigError, prog: str) -> int:
    """Print a configuration error (each problem of a file on its own line); exit status 2."""
    problems = exc.problems if isinstance(exc, ConfigFileError) else [str(exc)]
    for problem in problems:  # file names and values can hold terminal controls
        print(f"{prog}: error: {escape_text(str(problem))}", file=sys.stderr)
    return ExitStatus.USAGE


def validate(session: Session, prog: str, broken_config: ConfigFileError | None = None) -> int:
    """``--validate``: load the session and report every problem; 0 when nothing is wrong, else 2.

    :param broken_config: the configuration file's own problems, found before loading
        (the rules are then checked without it).
    """
    problems = 0
    if broken_config is not None:
        report_config_error(broken_config, prog)
        problems += len(broken_config.problems)
    try:
        session.load()
    except TemplateError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        problems += 1
    except ConfigError as exc:
        report_config_error(exc, prog)
        problems += len(exc.problems) if isinstance(exc, ConfigFileError) else 1
    problems += len(session.load_errors())  # already printed, with their files and lines, while loading
    if problems:
        print(f"{prog}: {problems} problem(s) found", file=sys.stderr)
        return ExitStatus.USAGE
    exceptions = len(session.settings.exceptions())
    overrides = len(session.settings.overrides)
    print(
        f"valid: {len(session.available)} signatures ({len(session.signatures)} enabled), "
        f"{exceptions} exceptions, {overrides} overrides"
    )
    return ExitStatus.OK


def list_params(session: Session) -> None:
    """``--list-params``: every declared parameter, its type, the value in force and its description."""
    rows = [("ID", "PARAMETER", "TYPE", "VALUE", "DESCRIPTION")]
    rows += param_table(session.available)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join(cells) + "  " + row[4])


def param_table(available: Iterable[LoadedSignature]) -> list[tuple[str, str, str, str, str]]:
    """Rows ``(ID, parameter, type, value, description)`` for ``--list-params``."""
    rows = []
    for loaded in available:
        declared: Mapping[str, Any] = declared_params(loaded.signature)
        params = getattr(loaded.signature, "params", {})
        for name, param in declared.items():
            value = params.get(name, param.default) if isinstance(params, Mapping) else param.default
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            rows.append((loaded.metadata.id, name, param.type, shown, param.description))
    return rows
