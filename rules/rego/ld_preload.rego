# TRC-7 (Tracee v0.8): the dynamic loader is told to load extra libraries into
# programs: a program started with LD_PRELOAD or LD_LIBRARY_PATH in its
# environment, or /etc/ld.so.preload (which affects every program) opened for writing.
package tracee.TRC_7

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-7",
	"version": "0.1.0",
	"name": "LD_PRELOAD",
	"description": "Libraries are injected into programs through LD_PRELOAD, LD_LIBRARY_PATH or /etc/ld.so.preload",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 2,
		"MITRE ATT&CK": "Persistence: Hijack Execution Flow"
	}
}

tracee_selected_events contains {"source": "tracee", "name": name} if {
	some name in ["execve", "security_file_open"]
}

tracee_match if {
	input.eventName == "execve"
	envp := helpers.get_tracee_argument("envp")
	is_array(envp)
	some variable in envp
	is_string(variable)
	some name in ["LD_PRELOAD", "LD_LIBRARY_PATH"]
	startswith(variable, name)
}

tracee_match if {
	input.eventName == "security_file_open"
	helpers.get_tracee_argument("pathname") == "/etc/ld.so.preload"
	helpers.is_file_write(helpers.get_tracee_argument("flags"))
}
