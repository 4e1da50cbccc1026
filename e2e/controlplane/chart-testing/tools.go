//go:build tools

// Package tools pins chart-testing's ct command this wrapper module builds.
package tools

import _ "github.com/helm/chart-testing/v3/ct"
