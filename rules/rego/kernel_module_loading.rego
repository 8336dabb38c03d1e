# TRC-6 (Tracee v0.8): a kernel module was loaded, through init_module(2) or by the
# kernel reading a module file (finit_module(2) shows as security_kernel_read_file).
package tracee.TRC_6

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-6",
	"version": "0.1.0",
	"name": "kernel module loading",
	"description": "A kernel module was loaded: code now runs in the kernel, often how rootkits persist",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Persistence: Kernel Modules and Extensions"
	}
}

tracee_selected_events contains {"source": "tracee", "name": name} if {
	some name in ["init_module", "security_kernel_read_file"]
}

tracee_match if input.eventName == "init_module"

# The read type is "kernel-module" with parse-arguments, READING_MODULE (2) without.
tracee_match := {"pathname": pathname} if {
	input.eventName == "security_kernel_read_file"
	helpers.get_tracee_argument("type") in {"kernel-module", 2}
	pathname := helpers.get_tracee_argument("pathname")
}
