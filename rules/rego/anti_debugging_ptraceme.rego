# TRC-2 (Tracee v0.8): a process called ptrace(PTRACE_TRACEME). A process can be
# traced by one tracer only, so asking to be traced by its own parent keeps any
# debugger from attaching to it later: a classic anti-debugging trick.
package tracee.TRC_2

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-2",
	"version": "0.1.0",
	"name": "Anti-Debugging",
	"description": "A process asked to be traced by its parent (ptrace PTRACE_TRACEME), which keeps debuggers away",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Defense Evasion: Execution Guardrails"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "ptrace"}

# The request is "PTRACE_TRACEME" with parse-arguments, 0 without.
tracee_match if {
	input.eventName == "ptrace"
	helpers.get_tracee_argument("request") in {"PTRACE_TRACEME", 0}
}
