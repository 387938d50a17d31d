package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// fakeRuns serves GET /api/v1/runs over runs n..1 with the API's limit rule (at most
// RunListLimitMax, default 100) and counts the requests.
func fakeRuns(t *testing.T, n int64, requests *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path == "/api/v1/status" {
			_ = json.NewEncoder(w).Encode(wire.Status{Primary: "a", Nodes: []wire.NodeStatus{{ID: "a", Mode: "primary"}}})
			return
		}
		q := r.URL.Query()
		limit, before := 100, n+1
		if v := q.Get("limit"); v != "" {
			l, err := strconv.Atoi(v)
			if err != nil || l < 0 || l > wire.RunListLimitMax {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(wire.Error{Error: wire.LimitProblem("limit", 0, wire.RunListLimitMax, v), Field: "limit"})
				return
			}
			limit = l
		}
		if v := q.Get("before"); v != "" {
			b, _ := strconv.ParseInt(v, 10, 64)
			before = b
		}
		runs := []wire.Run{}
		for id := before - 1; id >= 1 && len(runs) < limit; id-- {
			runs = append(runs, wire.Run{ID: id, Job: "j", State: "succeeded"})
		}
		_ = json.NewEncoder(w).Encode(runs)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runCLI(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&globals{out: &out, errOut: &errOut, now: time.Now})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.Bytes(), err
}

// More runs than the API gives at once are fetched in pages, newest first, none twice.
func TestRunsLimitPages(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := fakeRuns(t, 25000, &requests)
	out, err := runCLI(t, "runs", "--server", srv.URL, "--json", "--limit", "20005")
	if err != nil {
		t.Fatal(err)
	}
	var runs []wire.Run
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 20005 || runs[0].ID != 25000 || runs[len(runs)-1].ID != 25000-20004 || requests.Load() != 3 {
		t.Fatalf("%d runs (%d..%d) in %d requests, want 20005 (25000..4996) in 3", len(runs), runs[0].ID, runs[len(runs)-1].ID, requests.Load())
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].ID != runs[i-1].ID-1 {
			t.Fatalf("run %d follows run %d", runs[i].ID, runs[i-1].ID)
		}
	}
	// Fewer runs than asked for: the pages end with the runs.
	requests.Store(0)
	srv = fakeRuns(t, 12000, &requests)
	if out, err = runCLI(t, "runs", "--server", srv.URL, "--json", "--limit", "30000"); err != nil || json.Unmarshal(out, &runs) != nil || len(runs) != 12000 {
		t.Fatalf("%d runs, %v; want all 12000", len(runs), err)
	}
}

// A negative limit is refused by the CLI as by the API, in the same words.
func TestRunsNegativeLimitRefused(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := fakeRuns(t, 10, &requests)
	_, err := runCLI(t, "runs", "--server", srv.URL, "--limit", "-1")
	if want := wire.LimitProblem("limit", 0, wire.RunListLimitMax, "-1"); err == nil || err.Error() != want || requests.Load() != 0 {
		t.Fatalf("error %v after %d requests, want %q before any", err, requests.Load(), want)
	}
	if _, err := runCLI(t, "events", "--server", srv.URL, "--limit", "-1"); err == nil {
		t.Fatal("events --limit -1 accepted")
	}
}

// --client-timeout bounds the wait on a server that accepts and never answers (a frozen
// node): the status comes from the next server about that much later.
func TestClientTimeoutFlag(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel does), never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var requests atomic.Int32
	good := fakeRuns(t, 1, &requests)
	start := time.Now()
	out, err := runCLI(t, "status", "--server", ln.Addr().String()+","+good.URL, "--client-timeout", "300ms")
	if took := time.Since(start); err != nil || !strings.Contains(string(out), "primary") || took > 3*time.Second {
		t.Fatalf("status after %s: %v %s, want the table within about 300ms", took, err, out)
	}
	if _, err := runCLI(t, "status", "--server", good.URL, "--client-timeout", "0s"); err == nil {
		t.Fatal("--client-timeout 0s accepted")
	}
}
