"""CEL signatures: YAML detectors with CEL conditions, modelled on Tracee's YAML detectors.

A detector file (``*.yaml``/``*.yml`` in a ``--rules-dir``, or shipped in
``rules/cel/``) selects events, with data and scope filters the engine applies,
and adds CEL ``conditions`` (all must hold) and CEL ``output.fields`` (the
finding's Data)::

    type: detector
    id: CEL-102
    produced_event: {name: anti_debugging, version: 1}
    threat:
      name: Anti-Debugging detected
      severity: low
      mitre: {technique: {id: T1622, name: Debugger Evasion}, tactic: {name: Defense Evasion}}
    requirements:
      events:
        - name: ptrace
    conditions:
      - ptraceRequest(getEventData("request")) == 0
    output:
      fields:
        - {name: tracer, expression: event.processName}

In CEL, ``event`` is the ``trace.Event`` JSON object (``event.processName``,
``event.contextFlags.containerStarted`` ...) and the functions of
:mod:`.functions` read arguments (``getEventData``, ``hasData``), handle
strings (``split``, ``basename`` ...) and Tracee's raw or parse-arguments
values (``isFileWrite``, ``ptraceRequest`` ...). An evaluation error is no
match, counted and logged once per signature.

Modules, in the order a file goes through them:

* :mod:`.plugin`: the hooks (``--cel-engine``, ``--cel-time-budget``) and the
  per-run collector claiming detector files;
* :mod:`.spec`: the YAML format, parsed and validated with a line for every error;
* :mod:`.limits`: load-time limits on expressions and the per-event time budget;
* :mod:`.functions`: the functions available to expressions;
* :mod:`.backends`: ``cel-expr-python`` (default) and ``cel-python``;
* :mod:`.boundary`: what an event must be to reach CEL, admitted once per event;
* :mod:`.shortcut` and :mod:`.projection`: conditions decided in Python where the
  answer is certain, and the event fields the engine is given;
* :mod:`.signature`: :class:`~.signature.CelSignature`, the detector as a signature.

Test a detector like a Python signature::

    (sig,) = load_signatures("rules/anti_debugging.yaml")
    assert_fires(sig, [make_event("ptrace", {"request": "PTRACE_TRACEME"})])
"""
