"""Example third-party signatures for pytracee.

Installed, this package is found through its ``pytracee`` entry point
(``[project.entry-points.pytracee] example = "example_signatures"``), so
``tracee-rules`` runs these next to the built-ins without any option:

* **EX-1** (:class:`ShadowFileRead`, class form): ``/etc/shadow`` or
  ``/etc/gshadow`` opened for reading by a process whose user is not root.
* **EX-2** (:func:`reverse_shell_tool`, function form): ``nc``/``ncat``/``socat``
  executed with an option that attaches a program to the connection.

The signatures live in submodules, so the package registers them with the
``tracee_register_signatures`` hook (classes defined at module level in the
entry-point module itself would be collected without it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytracee.engine import hookimpl

from .credential_access import ShadowFileRead
from .execution import reverse_shell_tool

__all__ = ["ShadowFileRead", "reverse_shell_tool", "tracee_register_signatures"]
__version__ = "0.1.0"


@hookimpl
def tracee_register_signatures(register: Callable[[Any], None]) -> None:
    """Register EX-1 and EX-2 with the engine."""
    register(ShadowFileRead)
    register(reverse_shell_tool)
