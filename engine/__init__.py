"""pytracee's detection engine: Tracee events in, findings out.

The path of an event: :mod:`.reader` decodes Tracee's JSON into
:class:`Event` objects, :mod:`.dispatch` routes each one through the selector
index to the :class:`Signature` objects that asked for it, and their
:class:`Finding` objects go through the plugin hooks (:mod:`.hookspecs`) to
the outputs (:mod:`.output`). :mod:`.session` wires these together and
:mod:`.cli` exposes them as ``tracee-rules``.

Everything a signature author needs is importable from here.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from . import compiled

compiled.install()  # before any compiled module is imported: are they current?

if TYPE_CHECKING:
    from .context.proctree import ProcessInfo
    from .errors import ArgumentError, MalformedEventError
    from .events import Event
    from .findings import Finding, SignatureMetadata
    from .hookspecs import hookimpl
    from .params import Param
    from .parsers import (
        SockAddr,
        format_mem_prot_alert,
        format_open_flags,
        format_ptrace_request,
        is_elf,
        is_file_read,
        is_file_write,
        is_memory_path,
        mem_prot_alert,
        open_flags,
        ptrace_request,
    )
    from .selectors import EventSelector, select
    from .signature import Signal, Signature, SignatureContext, SourceComplete, signature

#: Where each public name lives: imported when first used, so that a command starts (and
#: ``tracee-rules --workers`` forks its walker) before the engine is imported.
_PUBLIC: dict[str, str] = {
    "ProcessInfo": ".context.proctree",
    **dict.fromkeys(("ArgumentError", "MalformedEventError"), ".errors"),
    "Event": ".events",
    **dict.fromkeys(("Finding", "SignatureMetadata"), ".findings"),
    "hookimpl": ".hookspecs",
    "Param": ".params",
    **dict.fromkeys(
        (
            "SockAddr",
            "format_mem_prot_alert",
            "format_open_flags",
            "format_ptrace_request",
            "is_elf",
            "is_file_read",
            "is_file_write",
            "is_memory_path",
            "mem_prot_alert",
            "open_flags",
            "ptrace_request",
        ),
        ".parsers",
    ),
    **dict.fromkeys(("EventSelector", "select"), ".selectors"),
    **dict.fromkeys(("Signal", "Signature", "SignatureContext", "SourceComplete", "signature"), ".signature"),
}


class _Package(types.ModuleType):
    """This package's module: ``signature`` stays the decorator when its module, ``.signature``, is
    imported (which would bind the name to the module), as the eager import used to leave it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PUBLIC and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return  # (the submodule stays in sys.modules: `import pytracee.engine.signature` works)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if not TYPE_CHECKING:  # (type checkers see the imports above: a misspelt name stays an error)

    def __getattr__(name: str) -> Any:
        """A public name, imported from its module on first use (then kept here); or a submodule,
        imported (``pytracee.engine.errors`` without an import of its own, as before)."""
        import importlib
        import importlib.util

        module = _PUBLIC.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module, __name__), name)
            globals()[name] = value
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *_PUBLIC})


__all__ = [
    "ArgumentError",
    "Event",
    "EventSelector",
    "Finding",
    "MalformedEventError",
    "Param",
    "ProcessInfo",
    "Signal",
    "Signature",
    "SignatureContext",
    "SignatureMetadata",
    "SockAddr",
    "SourceComplete",
    "format_mem_prot_alert",
    "format_open_flags",
    "format_ptrace_request",
    "hookimpl",
    "is_elf",
    "is_file_read",
    "is_file_write",
    "is_memory_path",
    "mem_prot_alert",
    "open_flags",
    "ptrace_request",
    "select",
    "signature",
]
