# TRC-10 (Tracee v0.8): a process other than the Kubernetes control-plane components
# read a file of the cluster's PKI (/etc/kubernetes/pki): certificates and keys that
# authenticate to the API server.
package tracee.TRC_10

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-10",
	"version": "0.1.0",
	"name": "K8S TLS Certificate Theft Detected",
	"description": "An unexpected process read a Kubernetes TLS certificate or key under /etc/kubernetes/pki",
	"tags": ["linux", "container", "kubernetes"],
	"properties": {
		"Severity": 3,
		"MITRE ATT&CK": "Credential Access: Steal Application Access Token"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "security_file_open"}

expected_readers := {"kube-apiserver", "kubelet", "kube-controller", "etcd"}

tracee_match if {
	input.eventName == "security_file_open"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	startswith(pathname, "/etc/kubernetes/pki/")
	helpers.is_file_read(helpers.get_tracee_argument("flags"))
	not input.processName in expected_readers
}
