package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// Each kind of error a handler meets is answered with its status and the field to
// blame, and only an unexpected one is logged as a failure.
func TestErrorStatusMapping(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		err   error
		code  int
		field string
	}{
		{fmt.Errorf("job x: %w", store.ErrNotFound), http.StatusNotFound, ""},
		{fmt.Errorf("apply: %w", store.ErrConflict), http.StatusConflict, ""},
		{fmt.Errorf("fire: %w", store.ErrFenced), http.StatusServiceUnavailable, ""},
		{fmt.Errorf("forward: %w", errUnreachable), http.StatusServiceUnavailable, ""},
		{fmt.Errorf("output: %w", output.ErrLost), http.StatusServiceUnavailable, ""},
		{&job.ValidationError{Field: "schedule[0]", Problem: "bad"}, http.StatusBadRequest, "schedule[0]"},
		{&badRequest{"limit", "limit must be a number"}, http.StatusBadRequest, "limit"},
		{fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), http.StatusRequestEntityTooLarge, "body"},
		{&statusError{code: http.StatusTooManyRequests, field: "user", msg: "slow down", retryAfter: "3"}, http.StatusTooManyRequests, "user"},
		{errors.New("disk full"), http.StatusInternalServerError, ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest("GET", "/api/v1/x", nil), c.err)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q is not JSON", c.err, rec.Body)
		}
		field, _ := body["field"].(string)
		if rec.Code != c.code || field != c.field || body["error"] != c.err.Error() {
			t.Errorf("%v: %d %v, want %d with field %q", c.err, rec.Code, body, c.code, c.field)
		}
	}
}

// node is a fake backend that is node id of a cluster whose addresses it knows, and
// records the node actions it performs.
type node struct {
	*fakeBackend
	id    string
	addrs map[string]string
	mu    sync.Mutex
	did   []string
}

func (n *node) NodeID() string { return n.id }
func (n *node) NodeAddress(_ context.Context, id string) string {
	return n.addrs[id]
}
func (n *node) NodeAction(_ context.Context, action, by string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.did = append(n.did, action+" by "+by)
	return "held", nil
}

// A node action sent to any node is forwarded to the node named, which performs it; a
// node that is not known is 404, one that cannot be reached 503, and a request that was
// already forwarded once is not forwarded again (409: the nodes disagree on who is where).
func TestNodeActionsAreForwarded(t *testing.T) {
	t.Parallel()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	serve := func(n *node) *httptest.Server {
		n.fakeBackend = &fakeBackend{authn: auth.New(auth.Params{Store: st, NoAuth: true})}
		mux := http.NewServeMux()
		NewServer(st, n, slog.New(slog.DiscardHandler)).Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	b := &node{id: "b"}
	bsrv := serve(b)
	a := &node{id: "a", addrs: map[string]string{"b": strings.TrimPrefix(bsrv.URL, "http://"), "gone": "127.0.0.1:1"}}
	asrv := serve(a)

	code, _, data := call(t, "POST", asrv.URL+"/api/v1/nodes/b/standby", nil)
	var res map[string]any
	if err := json.Unmarshal(data, &res); err != nil || code != 200 || res["node"] != "b" || res["mode"] != "held" {
		t.Fatalf("standby of b through a: %d %s", code, data)
	}
	if len(b.did) != 1 || len(a.did) != 0 {
		t.Fatalf("a did %v, b did %v: want b to perform the action once", a.did, b.did)
	}
	for _, c := range []struct {
		path   string
		header []string
		code   int
	}{
		{"/api/v1/nodes/nobody/standby", nil, http.StatusNotFound},
		{"/api/v1/nodes/gone/standby", nil, http.StatusServiceUnavailable},
		{"/api/v1/nodes/b/standby", []string{forwardedHeader, "c"}, http.StatusConflict},
	} {
		code, _, data := call(t, "POST", asrv.URL+c.path, nil, c.header...)
		if code != c.code || !strings.Contains(string(data), `"error"`) {
			t.Errorf("POST %s %v: %d %s, want %d with a JSON error", c.path, c.header, code, data, c.code)
		}
	}
}
