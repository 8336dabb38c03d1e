"""Children of pytracee that end with it: the ``--workers`` processes of a replay and the Rego
engine's worker process.

A child killed with its parent leaves nothing running on behind a main process that was
killed outright (SIGKILL gives it no chance to stop its children), not even a child stuck in a
signature. Linux does it for a child that asks (``prctl(PR_SET_PDEATHSIG)``); elsewhere a
child ends at its end of input or when its pipe to the parent closes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Final

__all__ = ["end_with", "libc_prctl"]

_PR_SET_PDEATHSIG: Final = 1


def libc_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (None where there is none). A process with threads looks it up before it
    forks: loading a library in a forked child of a threaded process is not safe."""
    import ctypes  # only for children that end with their parent: start-up does without it

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def end_with(parent: int, prctl: Callable[..., int] | None = None, *, status: int = 1) -> None:
    """Have this process killed (SIGKILL) when ``parent`` (the pid it was started or forked by,
    read before the fork) ends; exit with ``status`` at once when it ended already."""
    prctl = prctl if prctl is not None else libc_prctl()
    if prctl is None or prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        return
    if os.getppid() != parent:  # it ended before the call
        os._exit(status)
