"""What both commands and plugins share on the command line: option types, usage errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import ExitStatus

__all__ = ["non_negative_int", "usage_error"]


def non_negative_int(expected: str) -> Callable[[str], int]:
    """An argparse type for a whole number >= 0; ``expected`` says what one is wanted in the error
    (``--opt x: expected a number of megabytes (0: no limit), not 'x'``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def usage_error(parser: argparse.ArgumentParser, message: object) -> ExitStatus:
    """Print the usage and ``PROG: error: message`` on stderr, as argparse does; the exit status (2)."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return ExitStatus.USAGE
