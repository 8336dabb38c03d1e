# TRC-9 (Tracee v0.8): an ELF executable was written inside a running container.
# Containers run what their image holds; a new binary appearing at run time is
# typically a downloaded tool or payload. Tracee's magic_write event carries the
# first bytes written to a new file.
package tracee.TRC_9

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-9",
	"version": "0.1.0",
	"name": "New Executable Was Dropped During Runtime",
	"description": "An ELF executable was written to a file inside a running container",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 2,
		"MITRE ATT&CK": "Defense Evasion: Masquerading"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "magic_write", "origin": "container"}

tracee_match := {"file path": pathname} if {
	input.eventName == "magic_write"
	helpers.is_elf_file(helpers.get_tracee_argument("bytes"))
	pathname := helpers.get_tracee_argument("pathname")
}
