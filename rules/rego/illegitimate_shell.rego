# TRC-12 (Tracee v0.8): a web server started a shell, the usual sign of a web shell
# or a command injection in a web application.
package tracee.TRC_12

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-12",
	"version": "0.1.0",
	"name": "Illegitimate Shell",
	"description": "A web server process executed a shell",
	"tags": ["linux", "container"],
	"properties": {
		"Severity": 2,
		"MITRE ATT&CK": "Initial Access: Exploit Public-Facing Application"
	},
	# parameters: a configuration file changes them (params: {TRC-12: {web_servers: [...]}})
	"params": {
		# "httpd-foregroun": comm names are cut at 15 characters.
		"web_servers": {
			"default": ["nginx", "httpd", "httpd-foregroun", "lighttpd", "apache", "apache2"],
			"description": "process names of web servers that run no shell",
		},
		"shells": {
			"default": ["ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"],
			"description": "file names of shells",
		},
	},
}

tracee_selected_events contains {"source": "tracee", "name": "security_bprm_check"}

tracee_match if {
	input.eventName == "security_bprm_check"
	input.processName in data.config.TRC_12.web_servers
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	some shell in data.config.TRC_12.shells
	endswith(pathname, concat("", ["/", shell]))
}
