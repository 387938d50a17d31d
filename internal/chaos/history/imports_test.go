package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the import path prefix of tandem's own packages.
const module = "github.com/tandemhq/tandem/"

// pureTandem are the packages of tandem the checker may import: data types, the job
// file, schedules and the rules' matcher; none starts a process or talks to a network.
var pureTandem = []string{
	module + "internal/api/wire",
	module + "internal/job",
	module + "internal/notify",
	module + "internal/schedule",
	module + "internal/store",
}

// notDirect are standard packages the checker itself may not import, with net and every
// package under it: it opens no file and no connection, and makes no system call. (Its imports may: fmt imports os, and
// net/mail, through job, imports net to parse addresses.)
var notDirect = []string{"io/fs", "io/ioutil", "net", "os", "syscall"}

// notAtAll are standard packages nothing the checker imports may: they start processes,
// catch signals, or speak a network protocol or to a database.
var notAtAll = []string{"crypto/tls", "database/sql", "net/http", "net/rpc", "net/smtp", "os/exec", "os/signal", "plugin"}

// TestImports keeps the package pure (see the package doc): it asks the go command for
// everything the package imports, directly and through other packages, and rejects
// what could start a process or talk to a network, naming the chain of imports that
// brings it in.
func TestImports(t *testing.T) {
	t.Parallel()
	self, graph := listDeps(t)
	for _, p := range graph[self] {
		if slices.Contains(notDirect, p) || slices.Contains(notAtAll, p) || strings.HasPrefix(p, "net/") {
			t.Errorf("%s imports %s", self, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(graph)) {
		bad := slices.Contains(notAtAll, p)
		if strings.HasPrefix(p, module) && p != self && !slices.Contains(pureTandem, p) {
			bad = true // a tandem package not known to be pure: internal/chaos, node, client, api, …
		}
		if bad {
			t.Errorf("%s imports %s through %s", self, p, strings.Join(chain(graph, self, p), " → "))
		}
	}
}

// listDeps returns the package's import path and, for it and every package it imports
// directly or not, the packages that one imports (go list -deps).
func listDeps(t *testing.T) (self string, graph map[string][]string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", ".")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	graph = map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list -deps: %v", err)
		}
		graph[p.ImportPath] = p.Imports
		self = p.ImportPath // -deps lists a package after everything it imports
	}
	if !strings.HasSuffix(self, "/internal/chaos/history") {
		t.Fatalf("go list -deps ended with %q, want this package", self)
	}
	return self, graph
}

// chain is a shortest path of imports from one package to another.
func chain(graph map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, q := range graph[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "?", to}
}
