# TRC-8 (Tracee v0.8, shipped disabled there): a process in a container read the
# Kubernetes service account token mounted into its pod, which lets it talk to the
# API server as the pod. The Kubernetes components that do so routinely are ignored.
package tracee.TRC_8

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "TRC-8",
	"version": "0.1.0",
	"name": "K8S Service Account Token Use Detected",
	"description": "A process in a container read the pod's Kubernetes service account token",
	"tags": ["container", "kubernetes"],
	"properties": {
		"Severity": 0,
		"MITRE ATT&CK": "Credential Access: Credentials from Password Stores"
	}
}

tracee_selected_events contains {"source": "tracee", "name": "security_file_open", "origin": "container"}

expected_readers := {"flanneld", "kube-proxy", "etcd", "kube-apiserver", "coredns", "kube-controller", "kubectl"}

tracee_match if {
	input.eventName == "security_file_open"
	pathname := helpers.get_tracee_argument("pathname")
	is_string(pathname)
	contains(pathname, "secrets/kubernetes.io/serviceaccount")
	endswith(pathname, "token")
	helpers.is_file_read(helpers.get_tracee_argument("flags"))
	not input.processName in expected_readers
}
