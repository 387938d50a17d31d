package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/console"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingStore counts the repository reads the console's paths make: the status
// table's, the API's reads of jobs, runs, events, deliveries, and the session lookups.
type countingStore struct {
	store.Store
	store.Liveness
	mu sync.Mutex
	n  map[string]int
}

func (s *countingStore) add(m string) {
	s.mu.Lock()
	s.n[m]++
	s.mu.Unlock()
}

func (s *countingStore) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (s *countingStore) NodeList(ctx context.Context) ([]store.Node, error) {
	s.add("NodeList")
	return s.Store.NodeList(ctx)
}
func (s *countingStore) ClusterRead(ctx context.Context) (store.ClusterView, error) {
	s.add("ClusterRead")
	return s.Store.ClusterRead(ctx)
}
func (s *countingStore) RunCounts(ctx context.Context) ([]store.RunCount, error) {
	s.add("RunCounts")
	return s.Store.RunCounts(ctx)
}
func (s *countingStore) LeaseGet(ctx context.Context, name string) (store.Lease, error) {
	s.add("LeaseGet")
	return s.Store.LeaseGet(ctx, name)
}
func (s *countingStore) HoldList(ctx context.Context) ([]store.Hold, error) {
	s.add("HoldList")
	return s.Store.HoldList(ctx)
}
func (s *countingStore) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	s.add("TokenByHash")
	return s.Store.TokenByHash(ctx, hash)
}
func (s *countingStore) TokenTouch(ctx context.Context, id int64, now time.Time) error {
	s.add("TokenTouch")
	return s.Store.TokenTouch(ctx, id, now)
}
func (s *countingStore) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	s.add("RunList")
	return s.Store.RunList(ctx, p)
}
func (s *countingStore) RunGet(ctx context.Context, id int64) (store.Run, error) {
	s.add("RunGet")
	return s.Store.RunGet(ctx, id)
}
func (s *countingStore) EventList(ctx context.Context, p store.EventListParams) ([]store.Event, error) {
	s.add("EventList")
	return s.Store.EventList(ctx, p)
}
func (s *countingStore) JobList(ctx context.Context) ([]store.Job, error) {
	s.add("JobList")
	return s.Store.JobList(ctx)
}
func (s *countingStore) JobGet(ctx context.Context, name string) (store.Job, error) {
	s.add("JobGet")
	return s.Store.JobGet(ctx, name)
}
func (s *countingStore) OutputList(ctx context.Context, runID int64) ([]store.Output, error) {
	s.add("OutputList")
	return s.Store.OutputList(ctx, runID)
}
func (s *countingStore) DeliveryList(ctx context.Context, p store.DeliveryListParams) ([]store.Delivery, error) {
	s.add("DeliveryList")
	return s.Store.DeliveryList(ctx, p)
}

type harness struct {
	t     *testing.T
	node  *node.Node
	st    *countingStore
	base  string
	token string // the bootstrap admin token
	api   *client.Client
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, mod func(*config.Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.NodeID = dir, "127.0.0.1:0", "n1"
	cfg.ShutdownGrace = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	raw, err := storesqlite.Open(context.Background(), cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: raw, Liveness: raw, n: map[string]int{}}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := node.New(cfg, st, log)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok, err := auth.ReadBootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: n, st: st, base: "http://" + n.Addr(), token: tok,
		api: client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: tok})}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		raw.Close()
	})
	testutil.Wait(t, 10*time.Second, "the node to be primary", func() bool {
		st, err := h.api.Status(context.Background())
		return err == nil && st.Primary == "n1" && len(st.Nodes) == 1 && st.Nodes[0].Mode == "primary"
	})
	return h
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    *testing.T
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.h.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	if form.Get("csrf") == "" && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	resp, err := b.c.PostForm(b.h.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) loginToken(tok string) {
	b.t.Helper()
	b.get("/login")
	if code, body, h := b.post("/login", url.Values{"token": {tok}}); code != http.StatusSeeOther || h.Get("Location") != "/" {
		b.t.Fatalf("login: %d %s %s", code, h.Get("Location"), body)
	}
	b.get("/")
}

func (b *browser) loginUser(user, password string) {
	b.t.Helper()
	b.get("/login")
	if code, body, _ := b.post("/login", url.Values{"user": {user}, "password": {password}}); code != http.StatusSeeOther {
		b.t.Fatalf("login %s: %d %s", user, code, body)
	}
	b.get("/")
}

func (h *harness) addUser(name, role string) {
	h.t.Helper()
	if _, err := h.api.UserAdd(context.Background(), name, role, "correct horse battery"); err != nil {
		h.t.Fatal(err)
	}
}

func TestLoginSessionCookieAndLogout(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	b := h.browser()
	if code, _, hd := b.get("/"); code != http.StatusSeeOther || !strings.HasPrefix(hd.Get("Location"), "/login") {
		t.Fatalf("GET / without a session: %d %s", code, hd.Get("Location"))
	}
	// A wrong password is refused, saying so on the login page.
	h.addUser("alice", "operator")
	b.get("/login")
	if code, body, _ := b.post("/login", url.Values{"user": {"alice"}, "password": {"wrong password!"}}); code != http.StatusUnauthorized || !strings.Contains(body, "wrong user name or password") {
		t.Fatalf("wrong password: %d %s", code, body)
	}
	// A login form without its CSRF token is refused.
	if code, _, _ := b.post("/login", url.Values{"user": {"alice"}, "password": {"correct horse battery"}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("login without the form's token: %d", code)
	}
	b.get("/login")
	code, _, hd := b.post("/login", url.Values{"user": {"alice"}, "password": {"correct horse battery"}})
	if code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	var ck string
	for _, c := range hd.Values("Set-Cookie") {
		if strings.HasPrefix(c, console.SessionCookie+"=") {
			ck = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("session cookie %q is Secure over plain HTTP", ck)
	}
	code, body, _ := b.get("/")
	if code != http.StatusOK || !strings.Contains(body, `id="node-n1"`) || !strings.Contains(body, "user alice (operator)") {
		t.Fatalf("status page: %d %s", code, body)
	}
	if !strings.Contains(body, `data-action="suspend"`) || strings.Contains(body, `data-action="stop"`) {
		t.Errorf("an operator sees suspend, not stop (admin): %s", body)
	}
	if code, _, _ := b.post("/logout", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	// The session was revoked: its token no longer opens anything, even sent by hand.
	old := regexp.MustCompile(console.SessionCookie + `=([^;]+)`).FindStringSubmatch(ck)[1]
	b2 := h.browser()
	u, _ := url.Parse(h.base)
	b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: old}})
	if code, _, _ := b2.get("/"); code != http.StatusSeeOther {
		t.Fatalf("a logged-out session still opens the console: %d", code)
	}
}

// A viewer sees no action buttons; a POST it forges (with its own valid CSRF token) is
// refused 403, and nothing changes.
func TestViewerSeesNoButtonsAndIsRefused(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.addUser("vera", "viewer")
	b := h.browser()
	b.loginUser("vera", "correct horse battery")
	_, body, _ := b.get("/")
	if strings.Contains(body, "data-confirm-path") || !strings.Contains(body, `id="node-n1"`) {
		t.Fatalf("viewer's status page has action buttons or no row: %s", body)
	}
	for _, p := range []string{"/nodes/n1/suspend", "/nodes/n1/stop", "/switch", "/apply", "/bulk"} {
		if code, body, _ := b.post(p, url.Values{"to": {"n1"}, "op": {"cancel"}}); code != http.StatusForbidden || !strings.Contains(body, "role viewer") {
			t.Errorf("viewer POST %s: %d %s", p, code, body)
		}
	}
	st, err := h.api.Status(context.Background())
	if err != nil || st.Suspended != nil {
		t.Fatalf("status after refused POSTs: %+v %v", st, err)
	}
}

// An admin's POST without the session's CSRF token is refused.
func TestActionNeedsCSRFToken(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	if code, _, _ := b.post("/nodes/n1/suspend", url.Values{"csrf": {"not-the-token"}}); code != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", code)
	}
	code, _, hd := b.post("/nodes/n1/suspend", url.Values{"back": {"/"}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "msg=") {
		t.Fatalf("suspend: %d %s", code, hd.Get("Location"))
	}
	st, _ := h.api.Status(context.Background())
	if st.Suspended == nil || !strings.Contains(st.Suspended.By, "token bootstrap-admin") {
		t.Fatalf("suspension after the console's suspend: %+v", st.Suspended)
	}
}

// console.read_only: the node's console shows no buttons and refuses every action.
func TestReadOnlyConsole(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *config.Config) { c.Console.ReadOnly = true })
	b := h.browser()
	b.loginToken(h.token)
	_, body, _ := b.get("/")
	if strings.Contains(body, "data-confirm-path") || !strings.Contains(body, "read-only") {
		t.Fatalf("read-only status page: %s", body)
	}
	if code, body, _ := b.post("/nodes/n1/suspend", url.Values{}); code != http.StatusForbidden || !strings.Contains(body, "console.read_only") {
		t.Fatalf("read-only POST: %d %s", code, body)
	}
}

// A job file with an error is refused with the error next to the file, naming the field
// and its line; a good one is applied.
func TestApplyShowsTheFieldInError(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	b.get("/apply")
	code, body, _ := b.post("/apply", url.Values{"format": {"toml"}, "file": {"name = \"bad\"\ntimeout = \"0s\"\n[noop]\n"}})
	if code != http.StatusBadRequest || !regexp.MustCompile(`id="file-error"[^>]*><strong>timeout</strong> \(line 2\)`).MatchString(body) {
		t.Fatalf("bad job file: %d %s", code, body)
	}
	code, body, _ = b.post("/apply", url.Values{"format": {"toml"}, "file": {"name = \"good\"\nschedule = [\"@every 1h\"]\n[noop]\n"}})
	if code != http.StatusOK || !strings.Contains(body, "created") {
		t.Fatalf("good job file: %d %s", code, body)
	}
	_, body, _ = b.get("/jobs/good")
	if n := strings.Count(body, "<tr><td>"); n < console.JobUpcoming {
		t.Errorf("job page lists %d occurrences, want %d: %s", n, console.JobUpcoming, body)
	}
}

// Bulk cancel: the filter's queued runs are counted in the confirmation and canceled
// on the server.
func TestBulkCancel(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	if _, err := h.api.JobApply(ctx, []byte("name = \"stuck\"\ntags = [\"nowhere\"]\n[noop]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := h.api.JobRun(ctx, "stuck"); err != nil {
			t.Fatal(err)
		}
	}
	b := h.browser()
	b.loginToken(h.token)
	_, body, _ := b.get("/runs?job=stuck")
	if !strings.Contains(body, "Cancel 50 runs") {
		t.Fatalf("runs page offers no bulk cancel of 50: %s", body)
	}
	// Filters by node and creation time are the repository's.
	for q, want := range map[string]string{"job=stuck&node=n1": "<strong>0</strong> runs match", "job=stuck&since=2999-01-01T00:00": "<strong>0</strong> runs match",
		"job=stuck&until=2999-01-01T00:00": "<strong>50</strong> runs match"} {
		if _, body, _ := b.get("/runs?" + q); !strings.Contains(body, want) {
			t.Errorf("runs?%s: want %q in %s", q, want, body)
		}
	}
	if code, body, _ := b.get("/runs?since=yesterday"); code != http.StatusBadRequest || !strings.Contains(body, "since must be an RFC 3339 time") {
		t.Errorf("a bad since: %d %s", code, body)
	}
	_, body, _ = b.get("/bulk?op=cancel&job=stuck")
	if !strings.Contains(body, "Cancel 50 runs?") {
		t.Fatalf("bulk confirmation: %s", body)
	}
	code, _, hd := b.post("/bulk", url.Values{"op": {"cancel"}, "job": {"stuck"}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "50+runs+canceled") {
		t.Fatalf("bulk cancel: %d %s", code, hd.Get("Location"))
	}
	runs, err := h.api.RunList(ctx, client.RunListParams{Job: "stuck", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.State != "canceled" {
			t.Fatalf("run %d is %s after the bulk cancel", r.ID, r.State)
		}
	}
	// Run the canceled ones again: 50 new runs, once however often it is confirmed.
	_, body, _ = b.get("/runs?job=stuck")
	if !strings.Contains(body, "Run 50 again") || strings.Contains(body, "Cancel 50") {
		t.Fatalf("runs page after the cancel: %s", body)
	}
	for range 2 {
		if code, _, hd := b.post("/bulk", url.Values{"op": {"retry"}, "job": {"stuck"}, "state": {"canceled"}}); code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "50+runs+run+again") {
			t.Fatalf("bulk retry: %d %s", code, hd.Get("Location"))
		}
	}
	runs, err = h.api.RunList(ctx, client.RunListParams{Job: "stuck", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, r := range runs {
		if r.State == "queued" {
			queued++
		}
	}
	if len(runs) != 100 || queued != 50 {
		t.Fatalf("after running them again (twice): %d runs, %d queued; want 100 and 50", len(runs), queued)
	}
}

// The status pages share one poller: with N open live status pages the console reads
// the status at most once a second, and adds no more than one repository query per
// second per open page.
func TestStatusPollIsShared(t *testing.T) {
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	measure := func(pages int, d time.Duration) (map[string]int, int) {
		return measureStreams(t, h, b, "/stream/status", "event: nodes", pages, d)
	}
	const window = 5 * time.Second
	base, _ := measure(0, window)
	for _, pages := range []int{1, 10} {
		got, events := measure(pages, window)
		// What an open status page can make the repository do: the shared reading of
		// the status (ClusterRead: nothing else in this test reads it) and session
		// lookups. The node's own work (heartbeats, the lease, its pollers) is the same
		// with no page open (base); the overall difference is logged.
		console := 0
		for _, m := range []string{"ClusterRead", "TokenByHash", "TokenTouch"} {
			console += got[m] - base[m]
		}
		perPage := float64(console) / window.Seconds() / float64(pages)
		t.Logf("%d open pages: %d status pushes; reads in %s: %v (no page open: %v); the status pages made %d queries: %.2f per second per page (all reads: %+d)",
			pages, events, window, got, base, console, perPage, total(got)-total(base))
		if events < pages*(int(window.Seconds())-2) { // a loaded machine may miss a tick or two

			t.Errorf("%d pages got %d pushes in %s, want about one a second each", pages, events, window)
		}
		if reads := got["ClusterRead"] - base["ClusterRead"]; reads > int(window.Seconds())+1 {
			t.Errorf("%d pages: the status was read %d times in %s, want at most one a second", pages, reads, window)
		}
		if console > pages*int(window.Seconds())+1 {
			t.Errorf("%d pages: %d queries in %s (%.2f per second per page), want at most 1 per second per page", pages, console, window, perPage)
		}
	}
}

// measureStreams opens pages live streams of path for d and returns the repository
// reads made meanwhile (after the streams connected) and how many events named as
// event arrived.
func measureStreams(t *testing.T, h *harness, b *browser, path, event string, pages int, d time.Duration) (map[string]int, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events atomic.Int64
	var wg sync.WaitGroup
	for range pages {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
		resp, err := b.c.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", err, resp)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := resp.Body.Read(buf)
				events.Add(int64(strings.Count(string(buf[:n]), event)))
				if err != nil {
					return
				}
			}
		})
	}
	// Each stream connected (its session looked up) and sent its first panels.
	testutil.Wait(t, 10*time.Second, "the streams' first events", func() bool { return events.Load() >= int64(pages) })
	before := h.st.counts()
	time.Sleep(d) // the measuring window
	after := h.st.counts()
	cancel()
	wg.Wait()
	diff := map[string]int{}
	for k, v := range after {
		if v-before[k] != 0 {
			diff[k] = v - before[k]
		}
	}
	return diff, int(events.Load())
}

// A live runs page and a live events page each read their panel once a second: one
// repository query per second per open page.
func TestLivePagesReadOncePerSecond(t *testing.T) {
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	const window, pages = 4 * time.Second, 3
	base, _ := measureStreams(t, h, b, "/stream/runs", "event: runs-rows", 0, window)
	for _, c := range []struct{ path, event, method string }{
		{"/stream/runs", "event: runs-", "RunList"},
		{"/stream/events", "event: events", "EventList"},
	} {
		got, _ := measureStreams(t, h, b, c.path, c.event, pages, window)
		n := got[c.method] - base[c.method]
		t.Logf("%d open %s pages: %d %s in %s: %.2f per second per page (all reads: %v; no page open: %v)",
			pages, c.path, n, c.method, window, float64(n)/window.Seconds()/pages, got, base)
		if n > pages*(int(window.Seconds())+1) {
			t.Errorf("%s: %d reads by %d pages in %s, want at most one a second each", c.path, n, pages, window)
		}
	}
}

func TestPagesRender(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	for _, p := range []string{"/", "/jobs", "/runs", "/events", "/deliveries", "/rules", "/sync", "/apply"} {
		if code, body, _ := b.get(p); code != http.StatusOK || !strings.Contains(body, "</html>") {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, _, _ := b.get("/static/htmx/LICENSE-htmx"); code != http.StatusOK {
		t.Errorf("htmx licence: %d", code)
	}
	// The API keeps answering unknown paths in its own shape.
	resp, err := http.Get(h.base + "/api/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Errorf("GET /api/v1/nope: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The README's console table lists every console route with its role.
func TestREADMEConsoleTable(t *testing.T) {
	t.Parallel()
	c, err := console.New(console.Params{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Register(http.NewServeMux())
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Routes() {
		row := fmt.Sprintf("| `%s %s` | %s |", r.Method, r.Pattern, r.Role)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README: no row %s", row)
		}
	}
}

// Without JavaScript an action link leads to a confirmation page asking the same
// question, whose form does the action.
func TestConfirmPageWithoutJavaScript(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	b := h.browser()
	b.loginToken(h.token)
	// The node's row shows it primary (its heartbeat after the election) within moments.
	var m []string
	testutil.Wait(t, 10*time.Second, "a suspend link on the primary's row", func() bool {
		_, body, _ := b.get("/")
		m = regexp.MustCompile(`href="(/confirm\?[^"]*name=suspend[^"]*)"`).FindStringSubmatch(body)
		return m != nil
	})
	code, page, _ := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if code != http.StatusOK || !strings.Contains(page, `<form method="post" action="/nodes/n1/suspend">`) || !strings.Contains(page, "Suspend the primary role on n1?") {
		t.Fatalf("confirmation page: %d %s", code, page)
	}
	if code, _, _ := b.post("/nodes/n1/suspend", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("confirm: %d", code)
	}
	testutil.Wait(t, 5*time.Second, "the suspension to show", func() bool {
		_, body, _ := b.get("/")
		return strings.Contains(body, `data-mode="suspended"`) && strings.Contains(body, `data-action="resume"`)
	})
	// An action not offered now (suspend, on a suspended primary) has no page.
	if code, _, _ := b.get(strings.ReplaceAll(m[1], "&amp;", "&")); code != http.StatusNotFound {
		t.Fatalf("confirmation of an action not offered: %d", code)
	}
}

// A run's page lists its output files with download links that serve them.
func TestRunPageOutputsDownload(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	if _, err := h.api.JobApply(ctx, []byte("name = \"csv\"\n[command]\nargv = [\"sh\", \"-c\", \"echo 'region,amount' > $TANDEM_OUTPUT_DIR/sales.csv; echo done\"]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	run, err := h.api.JobRun(ctx, "csv")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Wait(t, 20*time.Second, "the run to succeed", func() bool {
		r, err := h.api.RunGet(ctx, run.ID)
		return err == nil && r.State == "succeeded"
	})
	b := h.browser()
	b.loginToken(h.token)
	_, body, _ := b.get(fmt.Sprintf("/runs/%d", run.ID))
	link := fmt.Sprintf(`href="/runs/%d/outputs/sales.csv"`, run.ID)
	if !strings.Contains(body, link) || !strings.Contains(body, "n1 (verified)") || !strings.Contains(body, "done\n") {
		t.Fatalf("run page: %s", body)
	}
	code, data, hd := b.get(fmt.Sprintf("/runs/%d/outputs/sales.csv", run.ID))
	if code != http.StatusOK || data != "region,amount\n" || !strings.Contains(hd.Get("Content-Disposition"), `filename="sales.csv"`) {
		t.Fatalf("download: %d %q %v", code, data, hd)
	}
}

// The Sync page shows the sender's side of the DR-site sync with the actions the role
// allows, each behind its confirmation; a viewer sees the status without them.
func TestSyncPage(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *config.Config) {
		c.SiteSync.Target = []string{"http://127.0.0.1:1"} // nothing answers there
		c.SiteSync.Token = "tdm_not-used"
	})
	b := h.browser()
	b.loginToken(h.token)
	code, body, _ := b.get("/sync")
	if code != http.StatusOK || !strings.Contains(body, `id="sync-sender"`) || !strings.Contains(body, "http://127.0.0.1:1") ||
		!strings.Contains(body, `data-action="pause"`) || !strings.Contains(body, `data-action="full"`) || strings.Contains(body, `data-action="promote"`) {
		t.Fatalf("admin's sync page: %d %s", code, body)
	}
	code, page, _ := b.get("/confirm?" + url.Values{"path": {"/sync/pause"}, "name": {"pause"}, "fields": {""}}.Encode())
	if code != http.StatusOK || !strings.Contains(page, `action="/sync/pause"`) || !strings.Contains(page, "Pause the sync to the DR site?") {
		t.Fatalf("confirmation of pause: %d %s", code, page)
	}
	if code, body, _ := b.post("/sync/pause", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("pause: %d %s", code, body)
	}
	testutil.Wait(t, 5*time.Second, "the sync to show paused", func() bool {
		_, body, _ := b.get("/sync")
		return strings.Contains(body, `data-sync-state="paused"`) && strings.Contains(body, `data-action="resume"`)
	})
	h.addUser("vera", "viewer")
	v := h.browser()
	v.loginUser("vera", "correct horse battery")
	if _, body, _ := v.get("/sync"); strings.Contains(body, "data-confirm-path") || !strings.Contains(body, `id="sync-sender"`) {
		t.Fatalf("viewer's sync page: %s", body)
	}
	if code, _, _ := v.post("/sync/resume", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("viewer's resume: %d", code)
	}
}
