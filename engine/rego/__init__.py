"""Rego signatures in Tracee's conventions, evaluated in-process (regorus or OPA).

* :mod:`.plugin`: the ``builtin-rego`` plugin: ``--rego-engine``, and the
  per-session collector turning ``.rego`` rule files into signatures (Tracee's
  rules-directory conventions: ``helpers.rego``, ``*helpers.rego``).
* :mod:`.policy`: reading one file: v0/v1 syntax detection, refused built-ins,
  ``__rego_metadoc__`` and ``tracee_selected_events``.
* :mod:`.backends`: the engines (regorus, OPA) and per-event evaluation.
* :mod:`.signature`: :class:`~.signature.RegoSignature`.
* ``helpers.rego``: the ``tracee.helpers`` package every signature can import.
"""
