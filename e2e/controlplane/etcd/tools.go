//go:build tools

// Package tools pins etcd's server command so `go mod tidy` keeps its
// dependencies. etcd's own go.mod carries replace directives, which is why
// `go install go.etcd.io/etcd/server/v3@vX` cannot build it.
package tools

import _ "go.etcd.io/etcd/server/v3"
