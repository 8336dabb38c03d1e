# TRC-4 (Tracee v0.8): a memory region that was writable and executable was made
# executable only: code was written at run time and is about to run (packers,
# shellcode loaders). Tracee reports it as a mem_prot_alert event.
package tracee.TRC_4

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-4",
	"version": "0.1.0",
	"name": "Dynamic Code Loading",
	"description": "Memory that was writable and executable became executable only: code written at run time is about to run",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 2,
		"MITRE ATT&CK": "Defense Evasion: Obfuscated Files or Information"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "mem_prot_alert"}

# The alert's text changed over Tracee's versions ("W+E to E" in v0.8, "W to E"
# in later tests); without parse-arguments it is the number 4.
write_then_exec_alerts := {"Protection changed from W+E to E!", "Protection changed from W to E!", 4}

tracee_match if {
	input.eventName == "mem_prot_alert"
	helpers.get_tracee_argument("alert") in write_then_exec_alerts
}
