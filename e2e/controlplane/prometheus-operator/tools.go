//go:build tools

// Package tools pins the Prometheus Operator command this wrapper module builds.
package tools

import _ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
