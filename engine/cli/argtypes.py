"""Types for command-line options that plugins and both commands share (argparse ``type=``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["non_negative_int"]


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
