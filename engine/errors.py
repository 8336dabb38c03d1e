"""Exceptions that end or interrupt a run, shared by the engine, its plugins and the commands.

A leaf module (it imports nothing from the engine), so that any layer can raise
or catch them without import cycles.
"""

from __future__ import annotations

__all__ = ["Interrupted", "StopRun"]


class StopRun(BaseException):
    """Raised by a plugin to end the run early (e.g. its output was closed).

    A ``BaseException`` so that it passes through the engine's per-signature
    error handling; the session still signals and closes the signatures.
    """


class Interrupted(KeyboardInterrupt):
    """The operator asked the run to stop (SIGINT or SIGTERM, see the commands' signal handlers).

    Distinct from a bare :class:`KeyboardInterrupt` (or :class:`SystemExit`) raised by a
    signature's own code, which is that signature's error: the run goes on.
    """
