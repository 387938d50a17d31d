package client

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

const testTimeout = 300 * time.Millisecond

// silentServer accepts connections and never answers, as a frozen (SIGSTOPped) process
// whose kernel still completes the handshake.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// refusedAddr is an address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// apiServer serves tandem's API over st, as node a of a cluster that is only a.
func apiServer(t *testing.T, st store.Store) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	api.NewServer(st, nopBackend{auth.New(auth.Params{Store: st})}, slog.New(slog.DiscardHandler)).Register(mux)
	return mux
}

// testToken is an admin token every test repository holds; the clients send it.
const testToken = "tdm_client-test-token-client-test-token-client"

// newStore returns a fresh repository holding a no-op job "n".
func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.TokenCreate(context.Background(), store.TokenCreateParams{Name: "test", Kind: store.TokenAPI, Role: "admin",
		Hash: auth.HashSecret(testToken), Audit: store.Audit{By: "test", Now: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	c := httptest.NewServer(apiServer(t, st))
	defer c.Close()
	if _, err := NewConfig(Config{Servers: []string{c.URL}, Token: testToken}).JobApply(context.Background(), []byte("name = \"n\"\n[noop]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	return st
}

type nopBackend struct{ authn *auth.Authenticator }

func (b nopBackend) Authenticator() *auth.Authenticator { return b.authn }

func (nopBackend) Status(context.Context) (wire.Status, error)                { return wire.Status{Primary: "a"}, nil }
func (nopBackend) JobsChanged()                                               {}
func (nopBackend) RunsQueued()                                                {}
func (nopBackend) CancelLocal(int64, string)                                  {}
func (nopBackend) NodeID() string                                             { return "a" }
func (nopBackend) NodeAddress(context.Context, string) string                 { return "" }
func (nopBackend) Outputs() *output.Service                                   { return nil }
func (nopBackend) OutputsHint()                                               {}
func (nopBackend) NodeAction(context.Context, string, string) (string, error) { return "standby", nil }
func (nopBackend) NodeWeight(context.Context, float64, string) error          { return nil }
func (nopBackend) Switch(_ context.Context, to string) (string, error)        { return to, nil }
func (nopBackend) WorkHint()                                                  {}
func (nopBackend) LeaseHint()                                                 {}

// A frozen first server costs a client its timeout, not a minute: it moves on to the next.
func TestFrozenServerIsPassedQuickly(t *testing.T) {
	t.Parallel()
	good := httptest.NewServer(apiServer(t, newStore(t)))
	t.Cleanup(good.Close)
	c := NewConfig(Config{Servers: []string{silentServer(t), good.URL}, Timeout: testTimeout, Token: testToken})
	start := time.Now()
	st, err := c.Status(context.Background())
	if err != nil || st.Primary != "a" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if took := time.Since(start); took > testTimeout+2*time.Second {
		t.Fatalf("status took %s past a frozen server, want about %s", took, testTimeout)
	}
	// The client stays with the server that answered.
	start = time.Now()
	if _, err := c.JobList(context.Background()); err != nil || time.Since(start) > testTimeout {
		t.Fatalf("second call: %v after %s, want it quick on the good server", err, time.Since(start))
	}
}

// A request that is not idempotent is not sent again after a server that may have got it
// (it did not answer), only after one that refused the connection.
func TestNonIdempotentRequestIsNotResent(t *testing.T) {
	t.Parallel()
	var got atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"from": "a", "to": "b"}`))
	}))
	t.Cleanup(counting.Close)
	c := NewConfig(Config{Servers: []string{silentServer(t), counting.URL}, Timeout: testTimeout, Token: testToken})
	_, err := c.Switch(context.Background(), "b")
	if err == nil || !strings.Contains(err.Error(), "not sent to another server") || got.Load() != 0 {
		t.Fatalf("switch past a silent server: %v, %d requests to the next; want an error and none", err, got.Load())
	}
	c = NewConfig(Config{Servers: []string{refusedAddr(t), counting.URL}, Timeout: testTimeout, Token: testToken})
	if res, err := c.Switch(context.Background(), "b"); err != nil || res.To != "b" || got.Load() != 1 {
		t.Fatalf("switch past a refused connection: %+v %v (%d requests), want it sent to the next", res, err, got.Load())
	}
}

// tandem run past a server that created the run but froze before answering: the retry on
// the next server carries the same Idempotency-Key and gets the same run.
func TestRunRetriedAfterAFreezeIsOneRun(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	h := apiServer(t, st)
	frozen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(httptest.NewRecorder(), r) // carried out...
		<-r.Context().Done()                   // ...and never answered
	}))
	t.Cleanup(frozen.Close)
	good := httptest.NewServer(h)
	t.Cleanup(good.Close)
	c := NewConfig(Config{Servers: []string{frozen.URL, good.URL}, Timeout: testTimeout, Token: testToken})
	run, err := c.JobRun(context.Background(), "n")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.RunList(context.Background(), store.RunListParams{Job: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("runs %+v, want one: run %d", runs, run.ID)
	}
	// Another invocation is another run.
	if again, err := c.JobRun(context.Background(), "n"); err != nil || again.ID == run.ID {
		t.Fatalf("second tandem run: %+v %v, want a new run", again, err)
	}
}
