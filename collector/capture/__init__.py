"""Forensic capture (``tracee --capture``): artifacts written, read, executed, unpacked in
memory, loaded as kernel modules or sent over the network, saved as Tracee saves them and
reported as events.

* :mod:`.options` parses ``--capture`` (Tracee v0.24.1's syntax) and holds ``--capture help``;
* :mod:`.kernel` configures bpf/capture.h (programs, syscalls, filters, budgets);
* :mod:`.artifacts` owns the capture directory (safe creation, names, budgets, hashes);
* :mod:`.manager` turns the kernel's chunks and executed files into artifacts and events;
* :mod:`.evidence` adds the artifact's path and sha256 to findings that have one.
"""

from .manager import ARTIFACT_EVENTS, ArtifactInfo, CaptureManager
from .options import CAPTURE_HELP, CaptureOptionError, CaptureOptions, parse_capture

__all__ = [
    "ARTIFACT_EVENTS",
    "CAPTURE_HELP",
    "ArtifactInfo",
    "CaptureManager",
    "CaptureOptionError",
    "CaptureOptions",
    "parse_capture",
]
