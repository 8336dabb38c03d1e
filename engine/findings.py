"""What signatures produce: :class:`SignatureMetadata` and :class:`Finding`.

A finding is Tracee's ``detect.Finding``: the signature's data, the event that
triggered it, and the signature's metadata. Its JSON form (:meth:`Finding.to_dict`)
is tracee-rules' ``rawjson`` output, ``{"Data", "Context", "SigMetadata"}``.
:func:`finding_to_event` turns a finding into a signature event the way Tracee's
unified binary does, so other signatures can select it by its ``event_name``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .events import Event

__all__ = ["SIGNATURE_EVENT_ID_BASE", "Finding", "SignatureMetadata", "finding_to_event"]

#: Tracee numbers signature events from 6000 in load order.
SIGNATURE_EVENT_ID_BASE: Final = 6000


@dataclass(frozen=True, slots=True)
class SignatureMetadata:
    """Tracee's ``detect.SignatureMetadata``.

    ``properties`` carries the threat fields Tracee's built-ins use: ``Severity``
    (0 info .. 4 critical), ``Category`` (MITRE tactic slug), ``Technique``,
    ``Kubernetes_Technique``, ``id`` (MITRE STIX id) and ``external_id`` (e.g. ``T1622``).
    """

    id: str
    name: str
    version: str = "1"
    event_name: str = ""
    description: str = ""
    tags: Sequence[str] | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> int | None:
        """``properties["Severity"]`` as an int, or None when unset."""
        severity = self.properties.get("Severity")
        return severity if isinstance(severity, int) and not isinstance(severity, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object Tracee writes as ``SigMetadata``."""
        return {
            "ID": self.id,
            "EventName": self.event_name,
            "Version": self.version,
            "Name": self.name,
            "Description": self.description,
            "Tags": list(self.tags) if self.tags is not None else None,
            "Properties": dict(self.properties),
        }


@dataclass(slots=True)
class Finding:
    """One detection: ``data`` from the signature, the triggering ``event``, its metadata.

    ``data`` is ``None`` for signatures that report no details, as in Tracee.
    """

    data: dict[str, Any] | None
    event: Event
    sig_metadata: SignatureMetadata
    #: Set once the ``tracee_finding_enrich`` hooks ran (in a ``--workers`` process, where the
    #: context they read lives), so that they do not run again where it is delivered.
    enriched: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The ``rawjson`` object: ``{"Data", "Context", "SigMetadata"}``."""
        return {"Data": self.data, "Context": self.event.to_dict(), "SigMetadata": self.sig_metadata.to_dict()}


def _arg_type(value: Any) -> str:
    # The C type names Tracee's FindingToEvent guesses for Finding.Data values.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long" if not -(2**31) <= value < 2**31 else "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "const char *"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "const char**"
    return "unknown"


def finding_to_event(finding: Finding, event_id: int) -> Event:
    """Tracee's ``FindingToEvent``: the finding as an event named ``sig_metadata.event_name``.

    The context comes from the triggering event; ``args`` holds one argument per
    data key plus ``detectedFrom`` (the triggering event's id, name, args and
    return value); ``metadata`` holds the signature's version, description, tags
    and properties with ``signatureID`` and ``signatureName`` added.
    """
    origin = finding.event
    meta = finding.sig_metadata
    args = [{"name": key, "type": _arg_type(value), "value": value} for key, value in (finding.data or {}).items()]
    args.append(
        {
            "name": "detectedFrom",
            "type": "unknown",
            "value": {
                "id": origin.event_id,
                "name": origin.name,
                "args": origin.raw.get("args") or [],
                "returnValue": origin.return_value,
            },
        }
    )
    raw = dict(origin.raw)
    raw.update(
        eventId=str(event_id),
        eventName=meta.event_name or meta.name,
        argsNum=len(args),
        returnValue=0,
        args=args,
        metadata={
            "Version": meta.version,
            "Description": meta.description,
            "Tags": list(meta.tags) if meta.tags is not None else None,
            "Properties": {**meta.properties, "signatureID": meta.id, "signatureName": meta.name},
        },
    )
    derived = Event(raw, origin.source, origin._where, origin._line)
    derived.context = origin.context
    return derived
