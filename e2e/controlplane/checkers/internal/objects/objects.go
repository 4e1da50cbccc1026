// Package objects reads the Kubernetes objects the checkers are given.
package objects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Read decodes one JSON object or a JSON array of objects from r as
// unstructured objects, whose integers are int64 as they are for a client
// that read them from the API server. An error names the object at fault.
func Read(r io.Reader) ([]*unstructured.Unstructured, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("reading objects: %w", err)
	}
	items := []json.RawMessage{raw}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '[' {
		items = nil
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("reading objects: %w", err)
		}
	}
	out := make([]*unstructured.Unstructured, 0, len(items))
	for i, item := range items {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(item); err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		out = append(out, obj)
	}
	return out, nil
}
