"""Findings point at their evidence: the artifact's path and sha256 in the finding's data.

With ``--capture``, ``tracee`` registers :class:`CaptureEvidence` as a plugin. Its
:func:`~pytracee.engine.hookspecs.tracee_finding_enrich` looks the finding's triggering
event up among the artifacts the capture made and adds ``artifact_path`` and
``artifact_sha256`` (and ``artifact_incomplete`` when bytes are missing) to the data:

* ``magic_write`` (TRC-1022 dropped executable): the file written, ``write.dev-*.inode-*``
  (its hash as captured when the finding is made: the file may still be growing; the
  artifact's ``capture_file_write`` event has the final one);
* ``sched_process_exec`` (TRC-105 fileless execution, and any signature on an exec): the
  executed file, ``exec.*``;
* ``mem_prot_alert`` (TRC-104 dynamic code loading): the region, ``bin.pid-*.ts-*``.

Tracee itself does not link findings to captured artifacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytracee.engine import hookimpl

if TYPE_CHECKING:
    from pytracee.engine.findings import Finding

    from .manager import CaptureManager

__all__ = ["CaptureEvidence"]


class CaptureEvidence:
    """The enrichment plugin; :attr:`manager` is set once the capture starts."""

    def __init__(self) -> None:
        self.manager: CaptureManager | None = None
        #: Findings given an artifact.
        self.linked = 0

    @hookimpl
    def tracee_finding_enrich(self, finding: Finding) -> None:
        """Add the artifact of the finding's event, if the capture made one."""
        manager = self.manager
        if manager is None:
            return
        info = manager.evidence_for(finding.event.raw)
        if info is None:
            return
        extra: dict[str, Any] = {"artifact_path": info.path, "artifact_sha256": info.sha256}
        if info.incomplete:
            extra["artifact_incomplete"] = True
        finding.data = dict(finding.data or {}, **extra)
        self.linked += 1

    def __repr__(self) -> str:
        return f"CaptureEvidence(linked={self.linked})"
