# TRC-5 (Tracee v0.8): a program ran from memory rather than from a file on disk:
# a memfd (memfd_create(2)) or the shared-memory file systems /dev/shm and /run/shm.
# On the host, runc's own memfd copy of itself ("memfd:runc...") is expected.
package tracee.TRC_5

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-5",
	"version": "0.1.0",
	"name": "Fileless Execution",
	"description": "A program was executed from memory (a memfd, /dev/shm or /run/shm) instead of a file on disk",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 2,
		"MITRE ATT&CK": "Defense Evasion: Obfuscated Files or Information"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "sched_process_exec"}

tracee_match if {
	input.eventName == "sched_process_exec"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	startswith(pathname, "memfd:")
	not startswith(pathname, "memfd:runc")
	not in_container
}

tracee_match if {
	input.eventName == "sched_process_exec"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	startswith(pathname, "memfd:")
	in_container
}

tracee_match if {
	input.eventName == "sched_process_exec"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	some dir in ["/dev/shm", "/run/shm"]
	startswith(pathname, dir)
}

# Flat (v0.8 .. v0.12) or nested (v0.13+) container id.
in_container if input.containerId != ""

in_container if input.container.id != ""
