# TRC-14 (Tracee v0.8): a cgroup's release_agent file was opened for writing from a
# container. The kernel runs the release agent as root on the host when the cgroup
# empties: a known container escape.
package tracee.TRC_14

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-14",
	"version": "0.1.0",
	"name": "CGroups Release Agent File Modification",
	"description": "A cgroup release_agent file was opened for writing inside a container, a way to run commands on the host",
	"tags": ["container"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Privilege Escalation: Escape to Host"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "security_file_open", "origin": "container"}

tracee_match := {"File Flags": flags, "File Path": pathname} if {
	input.eventName == "security_file_open"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	endswith(pathname, "/release_agent")
	flags := helpers.get_tracee_argument("flags")
	helpers.is_file_write(flags)
}
