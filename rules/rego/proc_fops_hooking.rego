# TRC-16 (Tracee v0.8): the file operations of /proc were redirected to other code,
# a rootkit technique to hide processes and files.
package tracee.TRC_16

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-16",
	"version": "0.1.0",
	"name": "Hooking proc file system file operations by overriding the function pointers",
	"description": "The /proc file system's file operations point at other code, as rootkits hiding processes do",
	"tags": ["linux"],
	"properties": {
		"Severity": 4,
		"MITRE ATT&CK": "Defense Evasion: Rootkit"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "hooked_proc_fops"}

tracee_match := {"hooked file_operations": hooked} if {
	input.eventName == "hooked_proc_fops"
	hooked := helpers.get_tracee_argument("hooked_fops_pointers")
	is_array(hooked)
	count(hooked) > 0
}
