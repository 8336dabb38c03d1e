"""pytracee's detection engine: Tracee events in, findings out.

The path of an event: :mod:`.reader` decodes Tracee's JSON into
:class:`Event` objects, :mod:`.dispatch` routes each one through the selector
index to the :class:`Signature` objects that asked for it, and their
:class:`Finding` objects go through the plugin hooks (:mod:`.hookspecs`) to
the outputs (:mod:`.output`). :mod:`.session` wires these together and
:mod:`.cli` exposes them as ``tracee-rules``.

Everything a signature author needs is importable from here.
"""

from . import compiled

compiled.install()  # before any compiled module is imported: are they current?

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
