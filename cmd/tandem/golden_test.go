package main_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the commands print")

// The JSON each --json command prints, and the status table, are contracts: scripts
// parse them. Their shapes are kept in golden files (testdata/json/*.shape,
// testdata/status.txt) and compared here, decoded into plain maps, never into the Go
// types that produce them. A field added shows up as a diff to review and commit with
// -update; a field renamed or removed fails.
func TestJSONShapesAreStable(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "jobs.toml")
	if err := os.WriteFile(jobFile, []byte(`
[[job]]
name = "shape"
schedule = ["0 0 1 1 *"]
[job.command]
argv = ["sh", "-c", "echo hi > \"$TANDEM_OUTPUT_DIR/out.txt\""]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ruleFile := filepath.Join(dir, "rules.toml")
	if err := os.WriteFile(ruleFile, []byte(`
[[rule]]
name = "failures"
on = ["run.failed"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]string{
		"job-apply":  {"job", "apply", "-f", jobFile},
		"rule-apply": {"rule", "apply", "-f", ruleFile},
		"run":        {"run", "shape", "--wait", "--timeout", "60s"},
	}
	order := []string{"job-apply", "rule-apply", "run"}
	for _, name := range order {
		check(t, name, tandem(t, s, append(shapes[name], "--json")...))
	}
	var rs []map[string]any
	testutil.Wait(t, 30*time.Second, "the run's output to be kept", func() bool {
		if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--job", "shape", "--json")), &rs); err != nil {
			t.Fatal(err)
		}
		return len(rs) == 1 && rs[0]["state"] == "succeeded"
	})
	id := fmt.Sprint(rs[0]["id"])
	// Commands that change state come after the ones that read it.
	for _, c := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"job-list", []string{"job", "list"}},
		{"job-show", []string{"job", "show", "shape"}},
		{"runs", []string{"runs", "--job", "shape"}},
		{"runs-show", []string{"runs", "show", id}},
		{"outputs", []string{"outputs"}},
		{"events", []string{"events", "--type", "job.applied", "--limit", "1"}},
		{"rule-list", []string{"rule", "list"}},
		{"deliveries", []string{"deliveries"}},
		{"notifications", []string{"notifications"}},
		{"whoami", []string{"whoami"}},
		{"user-list", []string{"user", "list"}},
		{"token-list", []string{"token", "list"}},
		{"secret-list", []string{"secret", "list"}},
		{"schedule-next", []string{"schedule", "next", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-28T00:00:00Z", "-n", "2"}},
		{"job-pause", []string{"job", "pause", "shape"}},
		{"node-suspend", []string{"node", "suspend", "n1"}},
		{"node-resume", []string{"node", "resume", "n1"}},
		{"node-weight", []string{"node", "weight", "n1", "2"}},
		{"job-delete", []string{"job", "delete", "shape"}},
		{"rule-delete", []string{"rule", "delete", "failures"}},
	} {
		check(t, c.name, tandem(t, s, append(c.args, "--json")...))
	}
	checkTable(t, tandem(t, s, "status"))
}

// check compares the shape of a JSON document with its golden file.
func check(t *testing.T, name, out string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, out)
	}
	var b strings.Builder
	shape(&b, "", v)
	golden(t, filepath.Join("testdata", "json", name+".shape"), b.String())
}

// shape writes one line per path: the path and the JSON type found there (for an
// array, its first element stands for all; times are told apart from other strings).
func shape(b *strings.Builder, path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(b, "%s\tobject\n", or(path, "."))
		for _, k := range keys {
			shape(b, path+"."+k, v[k])
		}
	case []any:
		if len(v) == 0 {
			fmt.Fprintf(b, "%s\tarray (empty)\n", or(path, "."))
			return
		}
		fmt.Fprintf(b, "%s\tarray\n", or(path, "."))
		shape(b, path+"[]", v[0])
	case string:
		kind := "string"
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			kind = "time"
		}
		fmt.Fprintf(b, "%s\t%s\n", or(path, "."), kind)
	case float64:
		fmt.Fprintf(b, "%s\tnumber\n", or(path, "."))
	case bool:
		fmt.Fprintf(b, "%s\tbool\n", or(path, "."))
	case nil:
		fmt.Fprintf(b, "%s\tnull\n", or(path, "."))
	}
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// checkTable compares the status table with its golden file, with what varies from run
// to run (addresses, times, ages, counts) replaced by placeholders.
func checkTable(t *testing.T, out string) {
	t.Helper()
	norm := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`https?://127\.0\.0\.1:\d+`), "ADDR"},
		{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "TIME"},
		{regexp.MustCompile(`\b\d+(\.\d+)?(ms|µs|s|m|h)\b`), "AGE"},
		{regexp.MustCompile(`\b\d+\b`), "N"},
		{regexp.MustCompile(` {2,}`), "  "},
	}
	for _, n := range norm {
		out = n.re.ReplaceAllString(out, n.with)
	}
	golden(t, filepath.Join("testdata", "status.txt"), out)
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tandem -run TestJSONShapesAreStable -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("%s changed (review, then rewrite it with -update):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
