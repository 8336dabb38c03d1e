# TRC-11 (Tracee v0.8): a block device of the host was mounted from inside a
# container, a way out of the container onto the host's file systems. runc itself
# mounts devices while it sets a container up (as thread 1 of "runc:[...]").
package tracee.TRC_11

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-11",
	"version": "0.1.0",
	"name": "Container Device Mount Detected",
	"description": "A device under /dev was mounted from inside a container",
	"tags": ["container"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Privilege Escalation: Escape to Host"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "security_sb_mount", "origin": "container"}

tracee_match := {"mounted device": device} if {
	input.eventName == "security_sb_mount"
	device := helpers.get_tracee_argument("dev_name")
	is_string(device)
	startswith(device, "/dev/")
	not runc_setting_up
}

runc_setting_up if {
	startswith(input.processName, "runc:")
	input.threadId == 1
}
