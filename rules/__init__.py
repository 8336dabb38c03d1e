"""Rule files shipped with pytracee: Rego signatures (rego/) and CEL detectors (cel/).

This package holds data only. The session offers these files like a ``--rules-dir``
whose signatures are off unless selected (``--rules lang:rego``, ``--rules all``, an ID).
"""
