"""The ``tracee-rules`` command's entry point: starts the walk ahead of a ``--workers`` replay at once.

Importing the engine and loading the signatures takes a quarter of a second, in which a second CPU
idles. A ``--workers`` replay's walker (:mod:`~pytracee.engine.walkahead`) can find the owners of
the first hundred thousand records or so in that time, so this entry point starts it before it
imports anything else, from what the command line says (``--workers``, one ``--input``,
``--max-line-size``); :func:`~pytracee.engine.cli.tracee_rules.main` keeps it if the options it
parses agree, else stops it and starts its own. Nothing is started when the command line leaves
any doubt (a ``--config`` file, an abbreviated option, several inputs): the walker then starts
once the options are parsed, as it always can.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..walkahead import WalkAhead

__all__ = ["tracee_rules"]

#: tracee-rules' default ``--max-line-size`` (:data:`~pytracee.engine.reader.DEFAULT_MAX_LINE_SIZE`,
#: not imported: importing the reader imports the engine).
DEFAULT_MAX_LINE_SIZE = 64 * 1024


def tracee_rules(argv: Sequence[str] | None = None) -> int:
    """Run tracee-rules (the console script); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    early = early_walker(argv)
    try:
        from .tracee_rules import main

        return main(argv, early)
    finally:
        if early is not None:
            early.stop()  # (main() adopted it, or stopped it: it ends here at the latest)


class _QuietParser(argparse.ArgumentParser):
    """A parser that says nothing: what it cannot read, the command's own parser reports."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


#: Options of a run that replays nothing, and the long options read here or that could change
#: what they say (a prefix of one of them, which the command's parser may take for it: no guess).
_NO_REPLAY = frozenset({"-h", "--help", "--list", "--list-events", "--list-params", "--validate", "--version"})
_READ = ("--workers", "--input", "--input-tracee", "--max-line-size", "--config")


def _plain(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for a replay in words read here without a doubt."""
    for arg in argv:
        if arg == "--":
            break
        option = arg.partition("=")[0]
        if option in _NO_REPLAY or (
            option.startswith("--") and option not in _READ and any(full.startswith(option) for full in _READ)
        ):
            return False
    return True


def early_walker(argv: Sequence[str]) -> WalkAhead | None:
    """The walker of the input that ``argv`` names plainly for ``--workers`` N >= 2, else None."""
    if not _plain(argv):
        return None
    parser = _QuietParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--input", "-i", action="append", default=[])
    parser.add_argument("--input-tracee", action="append", default=[])
    parser.add_argument("--max-line-size", type=int, default=DEFAULT_MAX_LINE_SIZE)
    parser.add_argument("--config")
    try:
        known, _ = parser.parse_known_args(argv)
    except (argparse.ArgumentError, ValueError):  # (the command's parser reports it)
        return None
    workers = known.workers or len(os.sched_getaffinity(0))
    if known.config is not None or known.input_tracee or len(known.input) != 1 or known.max_line_size < 0:
        return None
    path = known.input[0]
    if workers < 2 or path == "-" or "://" in path:
        return None
    return WalkAhead.start(path, workers, known.max_line_size)
