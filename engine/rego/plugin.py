"""The built-in Rego plugin (``builtin-rego``): ``.rego`` signatures in Tracee's conventions.

It adds ``--rego-engine {regorus,opa}`` to ``tracee-rules`` and, when a
session is configured, registers a :class:`RegoCollector` (``rego-collector``)
that turns the session's ``.rego`` rule files into
:class:`~.signature.RegoSignature` objects evaluated in-process:

* ``regorus`` (default): ``gordon-to-regorus``, Rust; Rego v0 and v1 files;
* ``opa``: the real OPA engine (``opa-golib-python-bindings``); v1 files only.

Programs embedding the engine choose the backend with
``SessionConfig(options=argparse.Namespace(rego_engine="opa"))``; without the
option the default is used.

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

from ..hookspecs import hookimpl
from ..plugins import RuleFileError
from ..signature import Signature
from .backends import BACKENDS, Backend, make_backend
from .policy import MATCH, metadata_from, parse_module, selectors_from
from .signature import RegoSignature

if TYPE_CHECKING:
    from ..session import SessionConfig

__all__ = ["DEFAULT_ENGINE", "HELPERS_FILE", "RegoCollector", "is_helper_file"]

log = logging.getLogger("pytracee.rego")

#: The backend used when no --rego-engine is given.
DEFAULT_ENGINE: Final = "regorus"
COLLECTOR_NAME: Final = "rego-collector"
_PACKAGES: Final = {"regorus": "gordon-to-regorus", "opa": "opa-golib-python-bindings"}
_MODULES: Final = {"regorus": "regorus", "opa": "opa_bindings"}


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


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    pm = config.pluginmanager
    if pm.get_plugin(COLLECTOR_NAME) is not None or pm.is_blocked(COLLECTOR_NAME):
        return
    engine = getattr(config.options, "rego_engine", None) or DEFAULT_ENGINE
    from ..session import ConfigError  # the session imports the plugins

    if engine not in BACKENDS:
        raise ConfigError(f"unknown Rego engine {engine!r}: choose {' or '.join(sorted(BACKENDS))}")
    if importlib.util.find_spec(_MODULES[engine]) is None:
        hint = " --ignore-requires-python" if engine == "opa" else ""
        raise ConfigError(
            f"--rego-engine {engine} needs the {_PACKAGES[engine]} package (pip install{hint} {_PACKAGES[engine]})"
        )
    pm.register(RegoCollector(engine), name=COLLECTOR_NAME)


# --- rule files ---------------------------------------------------------------------------------

#: Tracee's own helpers file name: skipped in rules directories.
HELPERS_FILE: Final = "helpers.rego"
#: The engine's helper package; signatures may not use it.
HELPERS_PACKAGE: Final = "data.tracee.helpers"


def is_helper_file(path: Path) -> bool:
    """``*helpers.rego`` other than ``helpers.rego``: an extra helper module."""
    return path.name != HELPERS_FILE and path.name.endswith(HELPERS_FILE)


def _is_test_file(path: Path) -> bool:
    return path.name.endswith("_test.rego")


class RegoCollector:
    """The session's Rego rule-file collector (registered as ``rego-collector``).

    :param engine: the backend name (``regorus`` or ``opa``); the backend is
        created on the first ``.rego`` file.
    """

    def __init__(self, engine: str = "regorus") -> None:
        self.engine_name = engine
        self._backend: Backend | None = None
        self._helper_dirs: set[Path] = set()
        #: helper file -> its load error (reported when the file itself is collected)
        self._helper_errors: dict[Path, RuleFileError] = {}
        self._helpers_loaded: set[Path] = set()

    @property
    def backend(self) -> Backend:
        """The session's backend (created on first use)."""
        if self._backend is None:
            self._backend = make_backend(self.engine_name)
        return self._backend

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
        key = path.resolve()
        self._helpers_loaded.add(key)
        module = parse_module(path)
        self.backend.add_helper(module)
        log.debug("%s: helper module %s (%s)", path, module.package[5:], module.syntax)

    # --- signatures ------------------------------------------------------------------------

    def load_signature(self, path: Path) -> RegoSignature:
        """The signature of one ``.rego`` file.

        :raises RuleFileError: for anything wrong with it.
        """
        module = parse_module(path)
        if module.package == HELPERS_PACKAGE:
            raise RuleFileError(
                path,
                "package tracee.helpers is the helpers' package; name a helper file *helpers.rego, "
                "or give the signature its own package (package tracee.<ID>)",
                module.package_line,
            )
        if MATCH not in module.rules:
            raise RuleFileError(path, f"no {MATCH} rule: a signature reports findings through {MATCH}", module.package_line)
        found: dict[str, Any] = {}

        def check(documents: dict[str, Any]) -> None:
            found["metadata"] = metadata_from(module, documents.get("__rego_metadoc__"))
            found["selectors"] = selectors_from(module, documents.get("tracee_selected_events"))

        rule = self.backend.add_signature(module, check)
        metadata, selectors = found["metadata"], found["selectors"]
        log.debug("%s: signature %s (%s, Rego %s)", path, metadata.id, self.engine_name, module.syntax)
        return RegoSignature(metadata, selectors, rule, path, module.syntax)

