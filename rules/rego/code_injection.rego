# TRC-3 (Tracee v0.8): code injected into another process, in one of three ways:
# ptrace(PTRACE_POKETEXT), writing to /proc/<pid>/mem, or process_vm_writev(2)
# aimed at another process.
package tracee.TRC_3

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-3",
	"version": "0.1.0",
	"name": "Code injection",
	"description": "A process wrote into the memory of another process (ptrace POKETEXT, /proc/<pid>/mem or process_vm_writev)",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Defense Evasion: Process Injection"
	}
}

tracee_selected_events contains {"source": "tracee", "name": name} if {
	some name in ["ptrace", "security_file_open", "process_vm_writev"]
}

# PTRACE_POKETEXT is request 4.
tracee_match if {
	input.eventName == "ptrace"
	helpers.get_tracee_argument("request") in {"PTRACE_POKETEXT", 4}
}

tracee_match := {"file flags": flags, "file path": pathname} if {
	input.eventName == "security_file_open"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	regex.match(`/proc/(?:\d.+|self)/mem`, pathname)
	flags := helpers.get_tracee_argument("flags")
	helpers.is_file_write(flags)
}

# The target pid is not the writer's own.
tracee_match if {
	input.eventName == "process_vm_writev"
	helpers.get_tracee_argument("pid") != input.processId
}
