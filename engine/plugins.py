"""Finding plugins and collecting their signatures, the way pytest finds tests.

Plugins come from three places, in this order:

1. **Built-ins**: :mod:`pytracee.signatures` (Tracee's signatures) and the
   output plugins; registered by name.
2. **Installed packages**: every entry point in the ``pytracee`` group
   (``[project.entry-points.pytracee] my_sigs = "my_package.signatures"``).
   ``PYTRACEE_DISABLE_PLUGIN_AUTOLOAD=1`` skips them.
3. **Rules directories** (``--rules-dir``, repeatable, searched recursively):
   each ``*.py`` file is imported as a plugin (except ``test_*.py``,
   ``*_test.py`` and ``conftest.py``, which are the rules' tests); every other
   file is offered to the :func:`~pytracee.engine.hookspecs.tracee_collect_rule_file`
   hook, through which the Rego and CEL plugins turn rule files into signatures.

A plugin's signatures are the :class:`~pytracee.engine.signature.Signature`
subclasses (with ``metadata``) and ``@signature`` functions defined at module
level, plus whatever it registers through ``tracee_register_signatures``.
Any plugin can be blocked by name (``--disable NAME``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import os
import stat
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pluggy

from . import hookspecs
from .dispatch import LoadedSignature, load_signature
from .errors import ConfigError, Interrupted, RuleFileError
from .signature import Signature, SignatureDefinitionError

__all__ = ["BUILTIN_PLUGINS", "BUILTIN_RULES", "ENTRY_POINT_GROUP", "LoadError", "PluginManager"]

log = logging.getLogger("pytracee.plugins")

ENTRY_POINT_GROUP: Final = "pytracee"
#: Built-in plugins: (name, module).
BUILTIN_PLUGINS: Final = (
    ("builtin-signatures", "pytracee.signatures"),
    ("builtin-syscall-context", "pytracee.signatures.syscall_context_hooks"),
    ("builtin-outputs", "pytracee.engine.output.plugin"),
    ("builtin-rego", "pytracee.engine.rego.plugin"),
    ("builtin-cel", "pytracee.engine.cel.plugin"),
    ("builtin-context", "pytracee.engine.context.plugin"),
)
#: Name under which the rule files shipped in pytracee.rules (the checkout's rules/) load.
BUILTIN_RULES: Final = "builtin-rules"
#: Suffixes of rule files some plugin is expected to claim; others are ignored quietly.
#: Largest rule or plugin file loaded from a rules directory.
MAX_RULE_FILE_SIZE: Final = 4 << 20
RULE_FILE_SUFFIXES: Final = (".rego", ".yaml", ".yml", ".cel")
_TEST_FILE_NAMES: Final = ("conftest.py",)


@dataclass(frozen=True, slots=True)
class LoadError:
    """A plugin, rule file or signature that failed to load, and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with pytracee's hooks and discovery."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.load_errors: list[LoadError] = []
        # (file, signature, enabled by default) of rule files collected so far
        self._rule_signatures: list[tuple[str, Signature, bool]] = []
        self._plugins_loaded = False

    # --- discovery -----------------------------------------------------------------------

    def load_plugins(self, disabled: Iterable[str] = (), installed: bool = True) -> None:
        """Block ``disabled`` plugin names, then load installed and built-in plugins (once)."""
        for name in disabled:
            self.set_blocked(name)
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if installed:
            self.load_installed()
        self.load_builtins()

    def load_builtins(self) -> None:
        """Register the built-in plugins (unless blocked)."""
        for name, module_name in BUILTIN_PLUGINS:
            if not self.is_blocked(name):
                try:
                    self.register(importlib.import_module(module_name), name=name)
                except Exception as exc:  # e.g. a rule-language backend missing from this installation
                    self.load_errors.append(LoadError(f"built-in plugin {name}", _describe_exception(exc)))

    def load_installed(self) -> int:
        """Load plugins from the ``pytracee`` entry-point group; returns how many loaded.

        Each entry point loads on its own: one that fails to import is recorded
        in :attr:`load_errors` by name and the others still load.
        """
        if os.environ.get("PYTRACEE_DISABLE_PLUGIN_AUTOLOAD"):
            return 0
        loaded = 0
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.is_blocked(entry_point.name) or self.get_plugin(entry_point.name) is not None:
                continue
            try:
                self.register(entry_point.load(), name=entry_point.name)
            except Exception as exc:
                where = f"installed plugin {entry_point.name} ({entry_point.value})"
                self.load_errors.append(LoadError(where, _describe_exception(exc)))
                continue
            loaded += 1
        return loaded

    def load_path(self, path: Path, config: Any, *, enabled_by_default: bool = True) -> None:
        """Load a rules directory, a Python plugin file or one rule file.

        :param enabled_by_default: ``False`` makes the rule files' signatures
            available but off unless ``--rules`` asks for them (the built-in rules/).
        """
        if path.is_dir():
            self.load_rules_dir(path, config, enabled_by_default=enabled_by_default)
        elif not path.exists():
            self.load_errors.append(LoadError(str(path), "rules directory or file does not exist"))
        elif not self._readable_rule_file(path):
            return
        elif path.suffix == ".py":
            self._load_python_file(path)
        else:
            self._collect_rule_file(path, config, enabled_by_default)

    def load_rules_dir(self, directory: Path, config: Any, *, enabled_by_default: bool = True) -> None:
        """Import the Python plugins of ``directory`` and collect its other rule files."""
        if not directory.is_dir():
            self.load_errors.append(LoadError(str(directory), "rules directory does not exist"))
            return
        for path in _walk(directory):
            if not self._readable_rule_file(path):
                continue
            if path.suffix == ".py":
                if not _is_test_file(path) and path.name != "__init__.py":
                    self._load_python_file(path)
            else:
                self._collect_rule_file(path, config, enabled_by_default)

    def _readable_rule_file(self, path: Path) -> bool:
        """False (with a warning, or a load error when too big) for what must not be read:
        FIFOs, devices, sockets (also behind symlinks) and files over :data:`MAX_RULE_FILE_SIZE`."""
        try:
            info = path.stat()
        except OSError as exc:
            log.warning("%s: skipped: %s", path, exc.strerror or exc)
            return False
        if not stat.S_ISREG(info.st_mode):
            log.warning("%s: skipped: not a regular file", path)
            return False
        if info.st_size > MAX_RULE_FILE_SIZE:
            self.load_errors.append(
                LoadError(str(path), f"{info.st_size} bytes; rule files are limited to {MAX_RULE_FILE_SIZE} bytes")
            )
            return False
        return True

    def _load_python_file(self, path: Path) -> None:
        name = path.stem
        if self.is_blocked(name):
            log.info("plugin %s (%s) is disabled", name, path)
            return
        if self.get_plugin(name) is not None:
            self.load_errors.append(LoadError(str(path), f"a plugin named {name!r} is already loaded"))
            return
        module_name = f"pytracee_rules.{name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None  # noqa: S101 - a .py path always has a loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a rule file must not end the process
            if isinstance(exc, Interrupted):
                raise
            del sys.modules[module_name]
            self.load_errors.append(LoadError(_where_in_file(path, exc), _describe_exception(exc)))
            return
        try:
            self.register(module, name=name)
        except ValueError as exc:  # pluggy rejects unknown or malformed hooks
            self.load_errors.append(LoadError(str(path), str(exc)))
        except (ConfigError, Interrupted):  # its tracee_configure refused the configuration: a usage error
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a historic hook (tracee_configure) failed
            if self.is_registered(module):
                self.unregister(module)
            self.load_errors.append(
                LoadError(_where_in_file(path, exc), f"registering it failed: {_describe_exception(exc)}")
            )

    def _collect_rule_file(self, path: Path, config: Any, enabled_by_default: bool = True) -> None:
        try:
            signatures = self.hook.tracee_collect_rule_file(path=path, config=config)
        except RuleFileError as exc:
            self.load_errors.append(LoadError(f"{exc.path}:{exc.line}" if exc.line else str(exc.path), exc.message))
            return
        except Exception as exc:
            self.load_errors.append(LoadError(str(path), f"rule file plugin failed: {_describe_exception(exc)}"))
            return
        if signatures is None:
            if path.suffix in RULE_FILE_SUFFIXES:
                log.warning("%s: no plugin recognised it as a rule file; skipped", path)
            else:
                log.debug("%s: not a rule file; ignored", path)
            return
        self._rule_signatures.extend((str(path), signature, enabled_by_default) for signature in signatures)

    # --- signatures ------------------------------------------------------------------

    def collect_signatures(self) -> list[LoadedSignature]:
        """Every signature of every registered plugin and rule file, instantiated.

        Failures are recorded in :attr:`load_errors` and the rest still load.
        """
        collected: list[LoadedSignature] = []
        for plugin_name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            found: dict[Any, None] = {}  # ordered set: a signature registered twice loads once

            def register(obj: Any) -> None:
                found[obj] = None  # noqa: B023 - called for this plugin only, in this iteration

            if isinstance(plugin, ModuleType):
                for obj in _module_signatures(plugin):
                    register(obj)
            for impl in self.hook.tracee_register_signatures.get_hookimpls():
                if impl.plugin is plugin:
                    try:
                        impl.function(**{arg: register for arg in impl.argnames})
                    except Exception as exc:
                        self.load_errors.append(
                            LoadError(
                                f"plugin {plugin_name}",
                                f"tracee_register_signatures failed: {_describe_exception(exc)}",
                            )
                        )
            for obj in found:
                loaded = self._instantiate(obj, plugin_name)
                if loaded is not None:
                    collected.append(loaded)
        for where, signature, enabled in self._rule_signatures:
            loaded = self._instantiate(signature, where, enabled)
            if loaded is not None:
                collected.append(loaded)
        return collected

    def _instantiate(self, obj: Any, plugin_name: str, enabled_by_default: bool = True) -> LoadedSignature | None:
        try:
            if isinstance(obj, type):
                if not issubclass(obj, Signature):
                    raise SignatureDefinitionError(f"{obj.__qualname__} is not a Signature subclass")
                obj = obj()
            elif not isinstance(obj, Signature) and not _looks_like_signature(obj):
                raise SignatureDefinitionError(f"{obj!r} is not a signature")
            return load_signature(obj, plugin_name, enabled_by_default)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            if isinstance(exc, Interrupted):
                raise
            self.load_errors.append(LoadError(f"plugin {plugin_name}", _describe_exception(exc)))
            return None

    def check_hooks(self) -> None:
        """Record a load error for every implementation of a hook that does not exist (a typo)."""
        for name, caller in vars(self.hook).items():
            if getattr(caller, "spec", True) is None:
                for impl in caller.get_hookimpls():
                    if not impl.optionalhook:
                        self.load_errors.append(
                            LoadError(f"plugin {impl.plugin_name}", f"unknown hook {name!r} (misspelled?)")
                        )

    def plugin_names(self) -> list[str]:
        """Names of the registered plugins."""
        return [name for name, plugin in self.list_name_plugin() if plugin is not None]


def _module_signatures(module: ModuleType) -> Iterable[type[Signature]]:
    for name, obj in vars(module).items():
        if (
            not name.startswith("_")
            and isinstance(obj, type)
            and issubclass(obj, Signature)
            and obj is not Signature
            and obj.__module__ == module.__name__
            and "metadata" in _class_attrs(obj)
            and not inspect.isabstract(obj)
        ):
            yield obj


def _class_attrs(cls: type) -> set[str]:
    return {attr for klass in cls.__mro__ if klass is not Signature and klass is not object for attr in vars(klass)}


def _looks_like_signature(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("get_metadata", "get_selected_events", "init", "on_event"))


def _walk(directory: Path) -> Sequence[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        found.extend(Path(root, f) for f in sorted(files) if not f.startswith("."))
    return found


def _is_test_file(path: Path) -> bool:
    return path.name.startswith("test_") or path.name.endswith("_test.py") or path.name in _TEST_FILE_NAMES


def _where_in_file(path: Path, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{path}:{exc.lineno}"
    resolved = path.resolve()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == resolved:
            return f"{path}:{frame.lineno}"
    return str(path)


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg}"
    if isinstance(exc, SystemExit):
        return f"the file tried to end the process (sys.exit({exc.code!r}))"
    if isinstance(exc, KeyboardInterrupt):
        return "the file raised KeyboardInterrupt itself"
    return f"{type(exc).__name__}: {exc}"
