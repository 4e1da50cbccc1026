// Command kstatus prints what the kstatus library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, the rules Flux and Helm 4's
// --wait apply) computes for each object: status.Compute, nothing added.
//
// Usage: kstatus < objects.json
//
// stdin holds one JSON object or a JSON array of objects; stdout gets a JSON
// array with one entry per object, in order: {"status": ..., "message": ...,
// "conditions": [...]} as status.Result has them, or {"error": ...} when
// Compute refuses the object (a field of the wrong type). Exit status 2
// means the input could not be read.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"retention.dev/e2e/controlplane/checkers/internal/objects"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Status     string      `json:"status,omitempty"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions,omitempty"`
	Error      string      `json:"error,omitempty"`
}

func main() {
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(objs))
	for _, obj := range objs {
		res, err := status.Compute(obj)
		if err != nil {
			out = append(out, result{Error: err.Error()})
			continue
		}
		r := result{Status: res.Status.String(), Message: res.Message}
		for _, c := range res.Conditions {
			r.Conditions = append(r.Conditions, condition{
				Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
			})
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}
