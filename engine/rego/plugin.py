"""The built-in Rego plugin (``builtin-rego``): ``.rego`` signatures in Tracee's conventions.

It adds the ``rego`` options to ``tracee-rules`` and, when a session is
configured, registers a :class:`RegoCollector` (``rego-collector``) that turns
the session's ``.rego`` rule files into :class:`~.signature.RegoSignature`
objects, evaluated in the Rego worker process (:mod:`.client`):

* ``--rego-engine``: ``regorus`` (default: ``gordon-to-regorus``, Rust; Rego
  v0 and v1 files) or ``opa`` (the real OPA engine,
  ``opa-golib-python-bindings``; v1 files only);
* ``--rego-time-budget MS``: one signature's evaluation of one event
  (see :mod:`.limits`);
* ``--rego-memory-limit MB``: how much the worker may grow.

Programs embedding the engine set them with
``SessionConfig(options=argparse.Namespace(rego_engine="opa", rego_time_budget=20))``;
a missing option takes its default.

Rule files are treated as by Tracee's ``tracee-rules --rules-dir``:

* ``helpers.rego`` (exactly): skipped; the engine's own ``tracee.helpers`` is used;
* ``*helpers.rego`` (e.g. ``my_helpers.rego``): an extra helper module added to
  every signature's engine. The helpers of a directory are loaded before its
  first signature, whatever the order the files are visited in;
* ``*_test.rego``: the rules' ``opa test`` files, skipped;
* any other ``.rego``: one signature.

Skipped and helper files are claimed (an empty list), so they are not reported
as unhandled.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..cli.usage import non_negative_int
from ..errors import ConfigError, RuleFileError
from ..hookspecs import hookimpl
from ..signature import Signature
from .limits import (
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIME_BUDGET_MS,
    MAX_OVERRUNS,
    OVERRUN_WINDOW,
    budget_ms,
)

if TYPE_CHECKING:  # the engine's modules are imported on the first .rego file (runs without Rego skip them)
    from ..session import SessionConfig
    from .client import WorkerClient
    from .rules import Namespace
    from .signature import RegoSignature

__all__ = ["BACKENDS", "DEFAULT_ENGINE", "HELPERS_FILE", "RegoCollector", "is_helper_file"]

log = logging.getLogger("pytracee.rego")

#: The backend used when no --rego-engine is given.
DEFAULT_ENGINE: Final = "regorus"
COLLECTOR_NAME: Final = "rego-collector"
_PACKAGES: Final = {"regorus": "gordon-to-regorus", "opa": "opa-golib-python-bindings"}
_MODULES: Final = {"regorus": "regorus", "opa": "opa_bindings"}
#: --rego-engine choices.
BACKENDS: Final = ("opa", "regorus")


@hookimpl
def tracee_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rego")
    group.add_argument(
        "--rego-engine",
        choices=sorted(BACKENDS),
        default=DEFAULT_ENGINE,
        help="engine evaluating .rego signatures: regorus (Rego v0 and v1) or opa (the OPA Go engine, "
        "v1 syntax only; needs opa-golib-python-bindings) (default: %(default)s)",
    )
    group.add_argument(
        "--rego-time-budget",
        metavar="MS",
        type=budget_ms,
        default=None,
        help=f"time budget of one Rego signature's evaluation of one event; a signature overrunning it "
        f"{MAX_OVERRUNS} times within {OVERRUN_WINDOW} evaluations is disabled, one taking 200 budgets is "
        f"stopped and disabled at once (default: {DEFAULT_TIME_BUDGET_MS:g} ms)",
    )
    group.add_argument(
        "--rego-memory-limit",
        metavar="MB",
        type=non_negative_int("a number of megabytes (0: no limit)"),
        default=None,
        help=f"how much memory the Rego worker process may take for the rules (it is restarted, and the "
        f"signature it was evaluating disabled, when it runs out); 0: no limit (default: {DEFAULT_MEMORY_LIMIT_MB} MB)",
    )


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    pm = config.pluginmanager
    if pm.get_plugin(COLLECTOR_NAME) is not None or pm.is_blocked(COLLECTOR_NAME):
        return
    engine = getattr(config.options, "rego_engine", None) or DEFAULT_ENGINE
    if engine not in BACKENDS:
        raise ConfigError(f"unknown Rego engine {engine!r}: choose {' or '.join(sorted(BACKENDS))}")
    if importlib.util.find_spec(_MODULES[engine]) is None:
        hint = " --ignore-requires-python" if engine == "opa" else ""
        raise ConfigError(
            f"--rego-engine {engine} needs the {_PACKAGES[engine]} package (pip install{hint} {_PACKAGES[engine]})"
        )
    budget = getattr(config.options, "rego_time_budget", None)
    if budget is None:
        budget = DEFAULT_TIME_BUDGET_MS
    elif isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
        raise ConfigError(f"the Rego time budget must be a positive number of milliseconds, not {budget!r}")
    memory = getattr(config.options, "rego_memory_limit", None)
    if memory is None:
        memory = DEFAULT_MEMORY_LIMIT_MB
    elif isinstance(memory, bool) or not isinstance(memory, int) or memory < 0:
        raise ConfigError(f"the Rego memory limit must be a number of megabytes (0: no limit), not {memory!r}")
    pm.register(RegoCollector(engine, budget, memory), name=COLLECTOR_NAME)


# --- rule files ---------------------------------------------------------------------------------

#: Tracee's own helpers file name: skipped in rules directories.
HELPERS_FILE: Final = "helpers.rego"


def is_helper_file(path: Path) -> bool:
    """``*helpers.rego`` other than ``helpers.rego``: an extra helper module."""
    return path.name != HELPERS_FILE and path.name.endswith(HELPERS_FILE)


def _is_test_file(path: Path) -> bool:
    return path.name.endswith("_test.rego")


class RegoCollector:
    """The session's Rego rule-file collector (registered as ``rego-collector``).

    :param engine: the backend name (``regorus`` or ``opa``).
    :param budget_ms: the time budget of one signature's evaluation of one event.
    :param memory_mb: how much the worker's memory may grow (0: no limit).

    The worker is shared with the other collectors of the process with the
    same settings, and started on the first ``.rego`` file.
    """

    def __init__(
        self,
        engine: str = "regorus",
        budget_ms: float = DEFAULT_TIME_BUDGET_MS,
        memory_mb: int = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.engine_name = engine
        self.budget_ms = budget_ms
        self.memory_mb = memory_mb
        self._namespace: Namespace | None = None
        self._helper_dirs: set[Path] = set()
        #: helper file -> its load error (reported when the file itself is collected)
        self._helper_errors: dict[Path, RuleFileError] = {}
        self._helpers_loaded: set[Path] = set()

    @property
    def namespace(self) -> Namespace:
        """This collector's rules in the worker (created on first use)."""
        if self._namespace is None:
            from .client import shared_client
            from .rules import Namespace

            self._namespace = Namespace(shared_client(self.engine_name, self.budget_ms, self.memory_mb), log)
        return self._namespace

    @property
    def client(self) -> WorkerClient:
        """The worker this collector's rules run in."""
        return self.namespace.client

    @hookimpl
    def tracee_collect_rule_file(self, path: Path, config: Any) -> list[Signature] | None:
        if path.suffix != ".rego":
            return None
        if path.name == HELPERS_FILE or _is_test_file(path):
            log.debug("%s: skipped (%s)", path, "Tracee's helpers" if path.name == HELPERS_FILE else "a test file")
            return []
        self._load_helpers_of(path.parent)
        if is_helper_file(path):
            key = path.resolve()
            error = self._helper_errors.pop(key, None)
            if error is not None:
                raise error
            if key not in self._helpers_loaded:  # a helper file given on its own
                self._load_helper(path)
            return []
        return [self.load_signature(path)]

    # --- helpers ----------------------------------------------------------------------------

    def _load_helpers_of(self, directory: Path) -> None:
        key = directory.resolve()
        if key in self._helper_dirs:
            return
        self._helper_dirs.add(key)
        try:
            helpers = sorted(p for p in directory.iterdir() if p.is_file() and is_helper_file(p))
        except OSError:
            return
        for path in helpers:
            try:
                self._load_helper(path)
            except RuleFileError as exc:
                self._helper_errors[path.resolve()] = exc

    def _load_helper(self, path: Path) -> None:
        self._helpers_loaded.add(path.resolve())
        from .policy import read_source

        self.namespace.load_helper(path, read_source(path))
        log.debug("%s: helper module (%s)", path, self.engine_name)

    # --- signatures ------------------------------------------------------------------------

    def load_signature(self, path: Path) -> RegoSignature:
        """The signature of one ``.rego`` file.

        :raises RuleFileError: for anything wrong with it.
        """
        from .policy import read_source
        from .signature import RegoSignature

        rule, (metadata, selectors, syntax, parameters) = self.namespace.load_signature(path, read_source(path))
        log.debug("%s: signature %s (%s, Rego %s)", path, metadata.id, self.engine_name, syntax)
        return RegoSignature(metadata, selectors, rule, path, syntax, parameters)
