// Command argocd-health runs an Argo CD resource health check (Lua) the way
// Argo CD v3.5 runs one from resource.customizations.health.<group>_<Kind>:
// under gopher-lua (the engine and version Argo CD embeds), with only the
// libraries Argo CD opens (package, base, table and its safe subset of os),
// the object in the global obj as Argo CD converts it, a one-second budget,
// and the returned table read back through gopher-json into status and
// message. An object being deleted is Progressing "Pending deletion" before
// any Lua runs, as in gitops-engine's GetResourceHealth.
//
// Usage: argocd-health SCRIPT.lua < objects.json
//
// stdin holds one JSON object or a JSON array of objects; stdout gets a JSON
// array with one entry per object, in order: {"status": ..., "message": ...},
// or {"error": ...} when the script fails (Argo CD then shows Unknown with
// that error). Exit status 2 means the input or the script file could not be
// read.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"

	"retention.dev/e2e/controlplane/checkers/internal/objects"
)

// The health codes Argo CD accepts from a script (gitops-engine pkg/health).
var validStatuses = []string{"Unknown", "Progressing", "Healthy", "Suspended", "Degraded", "Missing"}

// hookFinalizer marks an Argo CD hook; a hook being deleted still runs its check.
const hookFinalizer = "argocd.argoproj.io/hook-finalizer"

// healthStatus is gitops-engine's health.HealthStatus, field for field.
type healthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: argocd-health SCRIPT.lua < objects.json")
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err.Error())
	}
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fail(err.Error())
	}
	out := make([]result, 0, len(objs))
	for _, obj := range objs {
		hs, err := resourceHealth(obj, string(script))
		if err != nil {
			out = append(out, result{Error: err.Error()})
			continue
		}
		out = append(out, result{Status: hs.Status, Message: hs.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "argocd-health:", message)
	os.Exit(2)
}

// resourceHealth is gitops-engine's GetResourceHealth with a Lua override.
func resourceHealth(obj *unstructured.Unstructured, script string) (*healthStatus, error) {
	if obj.GetDeletionTimestamp() != nil && !slices.Contains(obj.GetFinalizers(), hookFinalizer) {
		return &healthStatus{Status: "Progressing", Message: "Pending deletion"}, nil
	}
	return executeHealthLua(obj, script)
}

// executeHealthLua is Argo CD's VM.ExecuteHealthLua with UseOpenLibs false.
func executeHealthLua(obj *unstructured.Unstructured, script string) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, OpenSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, SafeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = ""
	}
	if err != nil {
		return nil, err
	}

	returned := l.Get(-1)
	switch returned.Type() {
	case lua.LTTable:
		encoded, err := luajson.Encode(returned)
		if err != nil {
			return nil, err
		}
		hs := &healthStatus{}
		if err := json.Unmarshal(encoded, hs); err != nil {
			// An empty table encodes as [], which Argo CD reads as no health at all.
			typeError := &json.UnmarshalTypeError{Value: "array", Type: reflect.TypeFor[*healthStatus]()}
			if errors.As(err, &typeError) {
				return &healthStatus{}, nil
			}
			return nil, err
		}
		if !slices.Contains(validStatuses, hs.Status) {
			return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
		}
		return hs, nil
	case lua.LTNil:
		return &healthStatus{}, nil
	}
	return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type().String())
}

// decodeValue is Argo CD's conversion of an unstructured object into Lua values.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}
