//go:build tools

// Package tools pins the KEDA commands this wrapper module builds: the
// operator (ScaledObjects -> HPAs, the scalers) and the metrics API server
// (external.metrics.k8s.io, which asks the operator over gRPC).
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
