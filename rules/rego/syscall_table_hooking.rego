# TRC-15 (Tracee v0.8): entries of the kernel's system call table point outside the
# kernel's own code: a kernel rootkit hooked system calls. Tracee v0.8 reports all
# hooked entries in one hooked_syscalls event; later versions send one
# hooked_syscall event per entry, which is accepted too.
package tracee.TRC_15

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-15",
	"version": "0.1.0",
	"name": "Hooking system calls by overriding the system call table entries",
	"description": "System call table entries were changed to point at other code, as kernel rootkits do",
	"tags": ["linux"],
	"properties": {
		"Severity": 4,
		"MITRE ATT&CK": "Persistence: Hooking system calls entries in the system-call table"
	}
}

tracee_selected_events contains {"source": "tracee", "name": name} if {
	some name in ["hooked_syscalls", "hooked_syscall"]
}

tracee_match := {"hooked syscall": hooked} if {
	input.eventName == "hooked_syscalls"
	hooked := helpers.get_tracee_argument("hooked_syscalls")
	not_empty(hooked)
}

tracee_match := {"hooked syscall": hooked} if {
	input.eventName == "hooked_syscall"
	hooked := helpers.get_tracee_argument("hooked_syscall")
	not_empty(hooked)
}

# Later Tracee versions describe the hook in separate arguments (syscall, address, function, owner).
tracee_match := {"hooked syscall": {arg.name: arg.value | some arg in input.args}} if {
	input.eventName == "hooked_syscall"
	not has_argument("hooked_syscall")
	helpers.get_tracee_argument("syscall")
}

not_empty(value) if {
	is_array(value)
	count(value) > 0
}

not_empty(value) if {
	is_object(value)
	count(value) > 0
}

has_argument(name) if {
	input.args[_].name == name
}
