// Command kstatus prints what the upstream kstatus library (sigs.k8s.io/cli-utils
// pkg/kstatus/status, used by Flux, kpt and kubectl-based rollout tools) computes for each object
// of a Kubernetes List read as JSON from stdin: one line per object,
// "<kind>/<name><TAB><status><TAB><message>".
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	// The apimachinery decoder keeps integers as int64, as the library expects.
	list := &unstructured.UnstructuredList{}
	if err := list.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("reading a List from stdin: %w", err)
	}
	for i := range list.Items {
		obj := &list.Items[i]
		result, err := status.Compute(obj)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", obj.GetKind(), obj.GetName(), err)
		}
		message := strings.ReplaceAll(result.Message, "\n", " ")
		fmt.Fprintf(out, "%s/%s\t%s\t%s\n", obj.GetKind(), obj.GetName(), result.Status, message)
	}
	return nil
}
