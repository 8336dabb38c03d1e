"""The built-in CEL plugin (``builtin-cel``): YAML detector files become signatures.

* ``tracee_addoption`` adds the ``cel`` option group: ``--cel-engine``
  (``cel-expr-python``, the default, or the pure-Python ``cel-python``) and
  ``--cel-time-budget MS`` (see :mod:`.limits`).
* ``tracee_configure`` registers a :class:`CelCollector` for the run (plugin
  name ``cel-collector``). It claims ``*.yaml``/``*.yml`` files that are
  detectors (``type: detector``, or a ``requirements``/``conditions`` key)
  and leaves every other YAML file (``None``) to other plugins. It reads at
  most :data:`~.limits.MAX_RULE_FILE_SIZE` bytes of a file (a larger file that
  reads like a detector is an error, any other is left alone). A broken
  detector raises :class:`~pytracee.engine.errors.RuleFileError` with its
  file and line; the session reports it and loads the other files (``--strict``:
  the run stops).

Embedded use has no command line: the options are read with defaults
(``getattr(config.options, "cel_engine", ...)``), and ``load_signatures(path,
cel_engine="cel-python")`` picks a backend in tests.

The backend is created on the first detector file, once per run, and shared
by all its CEL signatures.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, RuleFileError
from ..hookspecs import hookimpl
from .backends import BACKENDS, DEFAULT_BACKEND, Backend, create_backend
from .limits import (
    DEFAULT_TIME_BUDGET_MS,
    DEFAULT_TIME_BUDGET_MS_PURE_PYTHON,
    budget_ms,
)

if TYPE_CHECKING:
    from ..session import SessionConfig
    from .signature import CelSignature

__all__ = ["COLLECTOR_NAME", "CelCollector", "tracee_addoption", "tracee_configure"]

log = logging.getLogger("pytracee.cel")

#: Name under which the per-run collector is registered.
COLLECTOR_NAME = "cel-collector"
SUFFIXES = (".yaml", ".yml")


@hookimpl
def tracee_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cel")
    group.add_argument(
        "--cel-engine",
        choices=list(BACKENDS),
        default=DEFAULT_BACKEND,
        help="engine evaluating CEL detectors: cel-expr-python (Google's cel-cpp, fast) or cel-python "
        "(pure Python, slow) (default: %(default)s)",
    )
    group.add_argument(
        "--cel-time-budget",
        metavar="MS",
        type=budget_ms,
        default=None,
        help=f"time budget of one event's CEL evaluation; a signature overrunning it repeatedly is disabled "
        f"(default: {DEFAULT_TIME_BUDGET_MS:g} ms, {DEFAULT_TIME_BUDGET_MS_PURE_PYTHON:g} ms with cel-python)",
    )


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    """Register the run's collector; bad options (embedded use) raise :class:`ConfigError`."""
    options = config.options
    engine = getattr(options, "cel_engine", None) or DEFAULT_BACKEND
    if engine not in BACKENDS:
        raise ConfigError(f"unknown CEL engine {engine!r}; choose one of {', '.join(BACKENDS)}")
    budget = getattr(options, "cel_time_budget", None)
    if budget is not None and not (isinstance(budget, (int, float)) and budget > 0):
        raise ConfigError(f"the CEL time budget must be a positive number of milliseconds, not {budget!r}")
    pm = config.pluginmanager
    if pm.get_plugin(COLLECTOR_NAME) is not None:
        pm.unregister(name=COLLECTOR_NAME)
    pm.register(CelCollector(engine, budget), name=COLLECTOR_NAME)


class CelCollector:
    """Loads the detector files of one run, with one backend.

    :param engine: the backend's name (see :data:`~.backends.BACKENDS`).
    :param budget_ms: the time budget, or ``None`` for the backend's default.
    """

    def __init__(self, engine: str = DEFAULT_BACKEND, budget_ms: float | None = None) -> None:
        self.engine = engine
        self.budget_ms = (
            budget_ms
            if budget_ms is not None
            else (DEFAULT_TIME_BUDGET_MS_PURE_PYTHON if engine == "cel-python" else DEFAULT_TIME_BUDGET_MS)
        )
        self._backend: Backend | None = None
        self.signatures: list[CelSignature] = []

    def backend(self, path: Path) -> Backend:
        """The run's backend, created on first use."""
        if self._backend is None:
            try:
                self._backend = create_backend(self.engine)
            except ImportError as exc:
                raise RuleFileError(
                    path, f"the CEL engine {self.engine!r} is not installed ({exc}); try pip install 'pytracee[celpy]'"
                ) from None
            log.debug("CEL engine: %s", self.engine)
        return self._backend

    @hookimpl
    def tracee_collect_rule_file(self, path: Path, config: SessionConfig) -> list[CelSignature] | None:
        if path.suffix not in SUFFIXES:
            return None
        # imported on the first rule file: a run without CEL rules does not pay for them
        from .signature import build_signature
        from .spec import looks_like_detector, parse_detector_file
        from .yamlload import FileTooLarge, read_rule_file

        try:
            text = read_rule_file(path)
        except FileTooLarge as exc:
            if not looks_like_detector(exc.head):
                return None
            raise RuleFileError(path, f"cannot read: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleFileError(path, f"cannot read: {exc}") from None
        specs = parse_detector_file(path, text)
        if specs is None:
            log.debug("%s: not a detector; left to other plugins", path)
            return None
        backend = self.backend(path)
        signatures = [build_signature(spec, backend, self.budget_ms) for spec in specs]
        self.signatures.extend(signatures)
        return signatures
