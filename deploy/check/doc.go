// Package check verifies deploy/'s Kubernetes manifests, compose file and monitoring
// offline, in tests: every manifest is decoded strictly into Kubernetes' own Go types
// (k8s.io/api, unknown or duplicate fields are errors), the compose file and the alert rules
// into their shapes, and what they refer to (files, Secrets, ConfigMaps, ports, nird's flags,
// the NATS users' passwords, the nats-server version go.mod pins) must exist.
//
// It is a module of its own so that the register's module does not depend on Kubernetes'
// types: `cd deploy/check && go test ./...` (.ci/run does).
package check
