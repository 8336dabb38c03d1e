"""The project's exceptions and exit statuses, in one leaf module.

It imports nothing from the engine, so that any layer (the reader, the plugins,
the Rego and CEL rule plugins, the outputs, both commands) can raise or catch
them without import cycles. The hierarchy::

    BaseException
     ├─ StopRun                  a plugin ends the run early (its output was closed)
     ├─ KeyboardInterrupt
     │   └─ Interrupted          the operator asked the run to stop (SIGINT, SIGTERM)
     └─ Exception
         └─ PytraceeError
             ├─ ConfigError      the configuration cannot work             → exit status 2
             ├─ RuleFileError    a rule file cannot be loaded (reported; --strict: ConfigError)
             ├─ InputError       unreadable input, or a bad record with --strict → exit status 1
             ├─ MalformedEventError (a ValueError)  an event's args are unusable:
             │                   its source counts it as skipped, the run goes on
             └─ ArgumentError (a LookupError)  an argument a signature asked for is
                                 missing or unusable: that signature's error

Errors that never leave their module stay there (``TemplateError`` in
:mod:`~pytracee.engine.output.templates`, ``FilterError`` in the collector, ...).
"""

from __future__ import annotations

import enum
from pathlib import Path

__all__ = [
    "ArgumentError",
    "ConfigError",
    "ExitStatus",
    "InputError",
    "Interrupted",
    "MalformedEventError",
    "PytraceeError",
    "RuleAbortError",
    "RuleFileError",
    "StopRun",
]


class ExitStatus(enum.IntEnum):
    """Exit statuses of ``tracee-rules`` and ``tracee`` (and what :meth:`Session.run` returns)."""

    #: The run completed (skipped records and signature errors are reported, not fatal).
    OK = 0
    #: The run failed: unreadable input, a --strict violation, findings not delivered, tracing failed.
    FAILED = 1
    #: Bad usage or configuration: options, templates, rule files (--strict), signature IDs, privileges.
    USAGE = 2
    #: Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
    INTERRUPTED = 130


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


class RuleAbortError(RuntimeError):
    """A signature's code called ``sys.exit()`` or raised ``KeyboardInterrupt`` itself.

    That is the signature's error, counted like any other; it does not end the run.
    """

    @classmethod
    def of(cls, exc: BaseException) -> RuleAbortError:
        """Wrap the SystemExit or KeyboardInterrupt a rule raised."""
        what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else type(exc).__name__
        error = cls(f"the signature tried to end the process ({what}); ignored")
        error.__cause__ = exc
        return error


class PytraceeError(Exception):
    """Base of the project's ordinary errors."""


class ConfigError(PytraceeError):
    """The configuration cannot work (unknown signature IDs, duplicate IDs, bad plugin options,
    broken rules with --strict)."""


class RuleFileError(PytraceeError):
    """A rule file cannot be loaded. Raised by plugins from ``tracee_collect_rule_file``.

    :param path: the file.
    :param message: what is wrong.
    :param line: the line, when known.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


class InputError(PytraceeError):
    """The input cannot be read, or (``strict``) holds a bad record."""


class MalformedEventError(PytraceeError, ValueError):
    """The event's ``args`` list is not a list of ``{"name", "value"}`` objects."""


class ArgumentError(PytraceeError, LookupError):
    """An argument a signature asked for is missing or has an unusable value."""
