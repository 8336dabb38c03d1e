"""Rego signatures in Tracee's conventions, evaluated in-process (regorus or OPA)."""
