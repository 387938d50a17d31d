package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// fakeBackend is a node of a cluster whose status table is fixed.
type fakeBackend struct {
	outputs *output.Service
	status  Status
	authn   *auth.Authenticator
	peer    *peer.Client
}

func (b *fakeBackend) Authenticator() *auth.Authenticator { return b.authn }
func (b *fakeBackend) Peer() *peer.Client {
	if b.peer == nil {
		return peer.New()
	}
	return b.peer
}

func (b *fakeBackend) Status(context.Context) (Status, error)            { return b.status, nil }
func (b *fakeBackend) JobsChanged()                                      {}
func (b *fakeBackend) RunsQueued()                                       {}
func (b *fakeBackend) CancelLocal(int64, string)                         {}
func (b *fakeBackend) NodeID() string                                    { return "a" }
func (b *fakeBackend) NodeAddress(context.Context, string) string        { return "127.0.0.1:1" }
func (b *fakeBackend) Outputs() *output.Service                          { return b.outputs }
func (b *fakeBackend) OutputsHint()                                      {}
func (b *fakeBackend) NodeWeight(context.Context, float64, string) error { return nil }
func (b *fakeBackend) NodeAction(context.Context, string, string) (string, error) {
	return "standby", nil
}
func (b *fakeBackend) Switch(_ context.Context, to string) (string, error) { return to, nil }
func (b *fakeBackend) WorkHint()                                           {}
func (b *fakeBackend) LeaseHint()                                          {}

// outputsOn makes every run's one output, out.csv, kept on node.
type outputsOn struct {
	store.Store
	node string
}

func (s outputsOn) OutputList(_ context.Context, runID int64) ([]store.Output, error) {
	lost := time.Now().Add(-time.Minute)
	return []store.Output{{RunID: runID, Attempt: 1, Name: "out.csv", Node: s.node, CreatedAt: time.Now(),
		Holders: []store.Holder{{Node: s.node, VerifiedAt: &lost, LostAt: &lost}}}}, nil
}

// newTestServer serves the API of node a over a fresh SQLite repository; node c of its
// cluster is lost.
func newTestServer(t *testing.T) (*httptest.Server, store.Store) {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &fakeBackend{status: Status{Primary: "a", Nodes: []NodeStatus{
		{ID: "a", Mode: "primary"}, {ID: "c", Mode: "lost", HeartbeatAt: time.Now().Add(-time.Minute)}}},
		authn: auth.New(auth.Params{Store: st, NoAuth: true})}
	// Node c is not live: the output service sees only a.
	b.outputs = output.New(output.Params{Store: st, Log: slog.New(slog.DiscardHandler), Node: "a", DataDir: t.TempDir(),
		Live: func(context.Context) ([]store.Node, error) { return []store.Node{{ID: "a", Mode: "primary"}}, nil }})
	mux := http.NewServeMux()
	NewServer(outputsOn{st, "c"}, b, slog.New(slog.DiscardHandler)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, st
}

// call sends a request and returns the answer's status, headers and body.
func call(t *testing.T, method, url string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

const noopJob = "name = \"n\"\n[noop]\n"

// Every error is the API's JSON error body, with the field to blame: also unknown
// routes, wrong methods, oversized and too deeply nested bodies.
func TestErrorsAreJSON(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	deep := "[" + strings.Repeat("a.", 30000) + "a]\n"
	cases := []struct {
		name, method, path string
		body               []byte
		code               int
		field, says, allow string
	}{
		{"unknown route", "GET", "/api/v1/nope", nil, 404, "path", "no such endpoint", ""},
		{"unknown root", "GET", "/", nil, 404, "path", "no such endpoint", ""},
		{"wrong method", "PUT", "/api/v1/jobs", nil, 405, "method", "not allowed", "GET, HEAD, POST"},
		{"wrong method on a job", "POST", "/api/v1/jobs/x", nil, 405, "method", "not allowed", "GET, HEAD, DELETE"},
		{"wrong method on an action", "GET", "/api/v1/nodes/a/suspend", nil, 405, "method", "not allowed", "POST"},
		{"oversized job file", "POST", "/api/v1/jobs", bytes.Repeat([]byte("#"), MaxBodyBytes+1), 413, "body", "over 1048576 bytes", ""},
		{"oversized switch", "POST", "/api/v1/switch", bytes.Repeat([]byte(" "), switchBodyMax+1), 413, "body", "over", ""},
		{"deep job file", "POST", "/api/v1/jobs?format=toml", []byte(deep), 400, "toml", "deeper than 16", ""},
		{"deep JSON job file", "POST", "/api/v1/jobs", []byte(strings.Repeat(`{"a": `, 20000)), 400, "json", "deeper than 16", ""},
		{"switch to a number", "POST", "/api/v1/switch", []byte(`{"to": 5}`), 400, "to", "(a JSON string), got a JSON number", ""},
		{"switch garbage", "POST", "/api/v1/switch", []byte(`{"too": "b"}`), 400, "body", `want {"to": NODE}`, ""},
		{"negative limit", "GET", "/api/v1/runs?limit=-1", nil, 400, "limit", "from 0 to 10000", ""},
		{"bad run id", "GET", "/api/v1/runs/x", nil, 400, "id", "positive whole number", ""},
		{"unknown job", "GET", "/api/v1/jobs/none", nil, 404, "", "not found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, h, data := call(t, c.method, srv.URL+c.path, c.body)
			var e Error
			if err := json.Unmarshal(data, &e); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q (%s), want a JSON error body", code, data, h.Get("Content-Type"))
			}
			if code != c.code || e.Field != c.field || !strings.Contains(e.Error, c.says) {
				t.Fatalf("%d %+v, want %d on field %q saying %q", code, e, c.code, c.field, c.says)
			}
			if got := h.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %s", took)
			}
		})
	}
}

// An output kept by a node that is down is told as such, not redirected to nowhere.
func TestOutputOfADownNode(t *testing.T) {
	t.Parallel()
	srv, st := newTestServer(t)
	if code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs", []byte(noopJob)); code != 201 {
		t.Fatalf("apply: %d %s", code, data)
	}
	run, err := st.RunCreate(context.Background(), store.RunCreateParams{Job: "n", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	code, _, data := call(t, "GET", srv.URL+"/api/v1/runs/"+itoa(run.ID)+"/outputs/out.csv", nil)
	want := "output out.csv of run " + itoa(run.ID) + ": output lost: no live holder (last holder c, lost at "
	if code != http.StatusServiceUnavailable || !strings.Contains(string(data), want) {
		t.Fatalf("%d %s, want 503 saying %q", code, data, want)
	}
}

// A retried run request with the same Idempotency-Key gets the same run.
func TestRunIdempotencyKey(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	if code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs", []byte(noopJob)); code != 201 {
		t.Fatalf("apply: %d %s", code, data)
	}
	runOf := func(key string) Run {
		t.Helper()
		code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs/n/run", nil, IdempotencyKeyHeader, key)
		var r Run
		if code != 201 || json.Unmarshal(data, &r) != nil {
			t.Fatalf("run: %d %s", code, data)
		}
		return r
	}
	first, again, other := runOf("k-1"), runOf("k-1"), runOf("k-2")
	if again.ID != first.ID || other.ID == first.ID {
		t.Fatalf("runs %d, %d (same key), %d (another key): want the first two equal, the third new", first.ID, again.ID, other.ID)
	}
	code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs/n/run", nil, IdempotencyKeyHeader, strings.Repeat("k", 201))
	if code != 400 || !strings.Contains(string(data), "Idempotency-Key") {
		t.Fatalf("long key: %d %s, want 400", code, data)
	}
}

// An `at` in the past is refused, unless the job already has it (a re-apply).
func TestApplyAtInThePast(t *testing.T) {
	t.Parallel()
	srv, st := newTestServer(t)
	past := "name = \"once\"\nschedule = [\"at 2020-01-01T00:00:00Z\"]\n[noop]\n"
	code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs", []byte(past))
	var e Error
	if _ = json.Unmarshal(data, &e); code != 400 || e.Field != "schedule[0]" || !strings.Contains(e.Error, "in the past") {
		t.Fatalf("%d %s, want 400 on schedule[0] saying in the past", code, data)
	}
	// The job as it was applied when that time was still ahead.
	sp := job.Spec{Name: "once", Schedule: []string{"at 2020-01-01T00:00:00Z"}, Noop: &job.Noop{}}
	sp.Default()
	if _, err := st.JobApply(context.Background(), store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp,
		Schedules: []store.ScheduleSpec{{Key: sp.ScheduleKey(0), Expr: sp.Schedule[0]}}}}}); err != nil {
		t.Fatal(err)
	}
	if code, _, data := call(t, "POST", srv.URL+"/api/v1/jobs", []byte(past)); code != 200 {
		t.Fatalf("re-apply unchanged: %d %s, want 200", code, data)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
