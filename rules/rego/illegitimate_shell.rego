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
	}
}

tracee_selected_events contains {"source": "tracee", "name": "security_bprm_check"}

# "httpd-foregroun": comm names are cut at 15 characters.
web_servers := {"nginx", "httpd", "httpd-foregroun", "lighttpd", "apache", "apache2"}

shells := ["/ash", "/bash", "/csh", "/ksh", "/sh", "/tcsh", "/zsh", "/dash"]

tracee_match if {
	input.eventName == "security_bprm_check"
	input.processName in web_servers
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	some shell in shells
	endswith(pathname, shell)
}
