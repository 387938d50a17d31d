package sitesync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/chaos"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/sitesync"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storepg"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil/mailtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

// site is one cluster of one node, in-process.
type site struct {
	t     *testing.T
	name  string
	dir   string
	db    string
	token string // the bootstrap admin token
	node  *node.Node
	st    store.Store
	c     *client.Client
	logs  *logBuffer
}

type logBuffer struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newSite(t *testing.T, name, db string) *site {
	dir := t.TempDir()
	if db == "" {
		db = filepath.Join(dir, "tandem.db")
	}
	return &site{t: t, name: name, dir: dir, db: db}
}

// start starts the site's node with mod applied to its configuration.
func (s *site) start(mod func(*config.Config)) {
	s.t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.DB, cfg.Listen, cfg.NodeID = s.dir, s.db, "127.0.0.1:0", s.name
	cfg.ShutdownGrace = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Finish(); err != nil {
		s.t.Fatal(err)
	}
	var err error
	if cfg.IsPostgres() {
		s.st, err = storepg.Open(context.Background(), cfg.DB, nil)
	} else {
		s.st, err = storesqlite.Open(context.Background(), cfg.DB)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.logs = &logBuffer{t: s.t}
	s.node = node.New(cfg, s.st, slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("site", s.name))
	if err := s.node.Start(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	if s.token == "" {
		if s.token, err = auth.ReadBootstrapToken(s.dir); err != nil {
			s.t.Fatal(err)
		}
	}
	s.c = client.NewConfig(client.Config{Servers: []string{s.node.Addr()}, Token: s.token})
	s.waitPrimary()
	n := s.node
	st := s.st
	s.t.Cleanup(func() { s.stopNode(n, st) })
}

func (s *site) stopNode(n *node.Node, st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		s.t.Errorf("stop %s: %v", s.name, err)
	}
	st.Close()
}

// stop stops the site's node (a clean stop).
func (s *site) stop() {
	s.stopNode(s.node, s.st)
	s.logs.mu.Lock()
	s.logs.t = nil
	s.logs.mu.Unlock()
}

func (s *site) waitPrimary() {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, s.name+" primary", func() (bool, string) {
		st, err := s.c.Status(ctx(s.t))
		if err != nil {
			return false, err.Error()
		}
		for _, n := range st.Nodes {
			if n.Mode == "primary" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", st.Nodes)
	})
}

// syncToken creates a token with the sync role on s and writes it to a file.
func (s *site) syncToken() string {
	s.t.Helper()
	tok, err := s.c.TokenCreate(ctx(s.t), "dr-sync-"+fmt.Sprint(time.Now().UnixNano()), "sync", "")
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.t.TempDir(), "sync.token")
	if err := os.WriteFile(path, []byte(tok.Secret+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func (s *site) apply(toml string) {
	s.t.Helper()
	if _, err := s.c.JobApply(ctx(s.t), []byte(toml), "toml"); err != nil {
		s.t.Fatalf("apply on %s: %v", s.name, err)
	}
}

// jobs are the site's job definitions by name, as JSON of (spec, paused).
func (s *site) jobs() map[string]string {
	s.t.Helper()
	list, err := s.st.JobList(ctx(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]string{}
	for _, j := range list {
		b, _ := json.Marshal(j.Spec)
		out[j.Name] = fmt.Sprintf("%s paused=%v", b, j.Paused)
	}
	return out
}

func (s *site) events(typ string) []store.Event {
	evs, err := s.st.EventList(ctx(s.t), store.EventListParams{Type: typ, Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", within, what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expected is what prod's jobs must look like on the DR site: substituted, and paused
// (held) unless paused on prod already, which the DR site shows as paused too.
func expected(t *testing.T, prod map[string]string) map[string]string {
	out := map[string]string{}
	for name, v := range prod {
		for _, r := range [][2]string{{`=10.0.0.5"`, `=10.9.0.5"`}, {`"10.0.0.5:`, `"10.9.0.5:`}, {"reports.prod", "reports.dr"}} {
			v = strings.ReplaceAll(v, r[0], r[1])
		}
		v = strings.Replace(v, "paused=false", "paused=true", 1)
		out[name] = v
	}
	return out
}

func sameJobs(prod, dr *site) func() (bool, string) {
	return func() (bool, string) {
		latest := must(prod.st.ConfigVersion(ctx(prod.t)))
		want, got := expected(prod.t, prod.jobs()), dr.jobs()
		tg := must(dr.st.SyncTargetGet(ctx(prod.t)))
		if fmt.Sprint(want) == fmt.Sprint(got) && tg.Cursor == latest {
			return true, ""
		}
		return false, fmt.Sprintf("cursor %d of %d\nprod (substituted): %v\n  dr: %v", tg.Cursor, latest, want, got)
	}
}

// streamed is "op entity key" of the changes a target applied from its source after
// the source's sequence from.
func streamed(t *testing.T, dr *site, from int64) []string {
	var out []string
	after := int64(0)
	for {
		cs, err := dr.st.ChangeList(ctx(t), store.ChangeListParams{After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			return out
		}
		for _, c := range cs {
			if c.SourceSeq > from {
				out = append(out, fmt.Sprintf("%d %s %s %s", c.SourceSeq, c.Op, c.Entity, c.Key))
			}
		}
		after = cs[len(cs)-1].Seq
	}
}

func sourceLog(t *testing.T, prod *site, from int64) []string {
	var out []string
	cs, err := prod.st.ChangeList(ctx(t), store.ChangeListParams{After: from, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%d %s %s %s", c.Seq, c.Op, c.Entity, c.Key))
	}
	return out
}

const jobsV1 = `
[[job]]
name = "extract"
schedule = ["@every 1h"]
[job.command]
argv = ["fetch", "--host=10.0.0.5", "--keep=10.0.0.50"]
env = { DB = "10.0.0.5:5432" }
[[job.deliver]]
webhook = "https://reports.prod/hook"

[[job]]
name = "ping"
schedule = ["@every 1h"]
[job.http]
url = "http://reports.prod:8080/ping"
`

// Production (SQLite) streams its configuration to the DR site (PostgreSQL) through
// a fault proxy: applied, updated, paused and deleted jobs and rules arrive
// substituted and paused; local changes on the DR site are refused; faults raise
// sync.failed and pause the sync after max_failures; resume catches up in order; a
// second source is refused; a full sync cut in the middle changes nothing; and the
// failback procedure runs end to end.
func TestTwoSites(t *testing.T) {
	dr := newSite(t, "dr", pgtest.NewDatabase(t))
	dr.start(nil)
	tokenFile := dr.syncToken()
	proxy, err := chaos.NewProxy(dr.node.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	box, mailAddr := mailtest.Start(t)
	prod := newSite(t, "prod", "")
	prodSync := func(c *config.Config) {
		c.SMTP.Host, c.SMTP.Port, c.SMTP.From, c.SMTP.TLS = "127.0.0.1", mailAddr.Port, "tandem@reports.prod", "none"
		c.SiteSync.Target = []string{"http://" + proxy.Addr()}
		c.SiteSync.TokenFile = tokenFile
		c.SiteSync.Timeout = 500 * time.Millisecond
		c.SiteSync.Retry = 50 * time.Millisecond
		c.SiteSync.MaxFailures = 3
		c.SiteSync.Substitute = []config.Substitution{{From: "10.0.0.5", To: "10.9.0.5"}, {From: "reports.prod", To: "reports.dr"}}
	}
	prod.start(prodSync)

	// Apply: the never-synced DR site gets a full sync, then the stream.
	prod.apply(jobsV1)
	waitFor(t, 10*time.Second, "jobs on the DR site", sameJobs(prod, dr))
	rule := "[[rule]]\nname = \"sync-failed\"\non = [\"sync.failed\"]\n[rule.email]\nto = [\"ops@reports.prod\"]\n[rule.webhook]\nurl = \"https://reports.prod/alerts\"\n"
	if _, err := prod.c.RuleApply(ctx(t), []byte(rule)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the rule on the DR site", func() (bool, string) {
		r, err := dr.st.RuleGet(ctx(t), "sync-failed")
		return err == nil && strings.Contains(string(r.Spec), "https://reports.dr/alerts"), fmt.Sprint(err)
	})
	// The substitution is recorded with the applied change.
	var rewritten []string
	for _, c := range must(dr.st.ChangeList(ctx(t), store.ChangeListParams{Limit: 10000})) {
		if c.Key == "extract" {
			rewritten = c.Rewritten
		}
	}
	if !strings.Contains(strings.Join(rewritten, "\n"), "command.argv.1: --host=10.0.0.5 → --host=10.9.0.5") {
		t.Fatalf("rewritten: %q", rewritten)
	}
	// Update, pause, delete.
	prod.apply(strings.Replace(jobsV1, "@every 1h", "@every 2h", 1))
	if _, err := prod.c.JobPause(ctx(t), "ping", true); err != nil {
		t.Fatal(err)
	}
	prod.apply("name = \"gone\"\n[noop]\n")
	if err := prod.c.JobDelete(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "updates on the DR site", sameJobs(prod, dr))

	// The DR site refuses local changes, naming the source.
	_, err = dr.c.JobApply(ctx(t), []byte("name = \"local\"\n[noop]\n"), "toml")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 409 || !strings.Contains(ce.Message, "sync target of prod") {
		t.Fatalf("a local change on the DR site: %v", err)
	}
	if _, err := dr.c.JobPause(ctx(t), "extract", false); err == nil {
		t.Fatal("a local resume on the DR site was accepted")
	}
	waitFor(t, 10*time.Second, "the cursor to reach the latest change", func() (bool, string) {
		st := must(prod.c.SyncStatus(ctx(t)))
		return st.Sender.Cursor == st.Sender.Latest, fmt.Sprintf("%+v", st.Sender)
	})
	st := must(prod.c.SyncStatus(ctx(t)))
	if st.Sender == nil || st.Sender.LagChanges != 0 || st.Sender.Cursor != st.Sender.Latest || st.Target.Active {
		t.Fatalf("status after catching up: %+v %+v", st.Sender, st.Target)
	}
	drSt := must(dr.c.SyncStatus(ctx(t)))
	if !drSt.Target.Active || drSt.Target.Cursor != st.Sender.Latest || drSt.Sender != nil {
		t.Fatalf("DR status: %+v", drSt)
	}

	// Faults: refused connections, then a partition. Each failed batch raises
	// sync.failed; after 3 the sync pauses itself.
	from := st.Sender.Cursor
	proxy.Set(chaos.Fault{Refuse: true})
	proxy.Reset() // the sender's kept-alive connection too
	for i := range 5 {
		prod.apply(fmt.Sprintf("name = \"during-%d\"\n[noop]\n", i))
	}
	waitFor(t, 20*time.Second, "the sync to pause itself", func() (bool, string) {
		st := must(prod.c.SyncStatus(ctx(t)))
		return st.Sender.Paused, fmt.Sprintf("%+v", st.Sender)
	})
	failed := prod.events("sync.failed")
	if len(failed) != 3 || len(prod.events("sync.paused")) != 1 {
		t.Fatalf("%d sync.failed and %d sync.paused events, want 3 and 1", len(failed), len(prod.events("sync.paused")))
	}
	if d := failed[0].Data; d["success"] != false || d["error"] == "" || d["target"] == "" || d["cursor"] != float64(from) {
		t.Fatalf("sync.failed data %v", d)
	}
	// The rule on sync.failed mailed the operators (its webhook goes to reports.prod,
	// which this test does not serve).
	waitFor(t, 10*time.Second, "the sync-failed rule's notices", func() (bool, string) {
		ns := must(prod.st.NotificationList(ctx(t), store.NotificationListParams{Rule: "sync-failed"}))
		return len(ns) >= 1 && ns[0].EventType == "sync.failed", fmt.Sprint(len(ns))
	})
	waitFor(t, 20*time.Second, "the sync-failed rule's email", func() (bool, string) {
		for _, m := range box.Mails() {
			if strings.Contains(m, "ops@reports.prod") && strings.Contains(m, "sync.failed") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d mails: %q", len(box.Mails()), box.Mails())
	})
	st = must(prod.c.SyncStatus(ctx(t)))
	if st.Sender.LagChanges != 5 || st.Sender.LastError == "" || st.Sender.LagSeconds <= 0 {
		t.Fatalf("status while paused: %+v", st.Sender)
	}
	proxy.Set(chaos.Blackhole)
	proxy.Reset()
	must(prod.c.SyncPause(ctx(t), false)) // resume into a partition: fails again
	waitFor(t, 20*time.Second, "the sync to pause itself again", func() (bool, string) {
		st := must(prod.c.SyncStatus(ctx(t)))
		return st.Sender.Paused && len(prod.events("sync.failed")) == 6, fmt.Sprintf("%+v", st.Sender)
	})
	// Heal and resume: every change arrives, in order, once.
	proxy.Heal()
	proxy.Reset()
	prod.apply("name = \"after\"\n[noop]\n")
	must(prod.c.SyncPause(ctx(t), false))
	waitFor(t, 10*time.Second, "the catch-up", sameJobs(prod, dr))
	waitFor(t, 5*time.Second, "sync.succeeded", func() (bool, string) { return len(prod.events("sync.succeeded")) == 1, "" })
	if got, want := strings.Join(streamed(t, dr, from), "\n"), strings.Join(sourceLog(t, prod, from), "\n"); got != want {
		t.Fatalf("DR applied:\n%s\nproduction's log:\n%s", got, want)
	}
	prodLog := must(prod.st.ChangeList(ctx(t), store.ChangeListParams{Limit: 100000}))
	drLog := must(dr.st.ChangeList(ctx(t), store.ChangeListParams{Limit: 100000}))
	for _, v := range history.CheckSync(history.Sync{Source: prodLog, Target: drLog, From: from, Cursor: must(dr.st.SyncTargetGet(ctx(t))).Cursor}) {
		t.Errorf("[%s] %s", v.Rule, v.Detail)
	}

	// A second source is refused.
	other := newSite(t, "other", "")
	other.start(func(c *config.Config) {
		c.SiteSync.Target = []string{"http://" + dr.node.Addr()}
		c.SiteSync.TokenFile = tokenFile
		c.SiteSync.Retry, c.SiteSync.MaxFailures = 50*time.Millisecond, 2
	})
	waitFor(t, 10*time.Second, "the second source to be refused", func() (bool, string) {
		st := must(other.c.SyncStatus(ctx(t)))
		return st.Sender.Paused && strings.Contains(st.Sender.LastError, "takes changes from prod"), fmt.Sprintf("%+v", st.Sender)
	})
	_, err = other.c.SyncFull(ctx(t))
	if !errors.As(err, &ce) || ce.Status != 409 || !strings.Contains(ce.Message, "sync target of prod") {
		t.Fatalf("a full sync from a second source: %v", err)
	}
	other.stop()

	// A full sync cut in the middle (every connection reset while the snapshot
	// travels, as latency holds it) leaves the DR site as it was.
	must(prod.c.SyncPause(ctx(t), true))
	for i := range 200 {
		prod.apply(fmt.Sprintf("name = \"bulk-%d\"\n[noop]\n", i))
	}
	before := dr.jobs()
	beforeTarget := must(dr.st.SyncTargetGet(ctx(t)))
	proxy.Set(chaos.Fault{Latency: [2]time.Duration{200 * time.Millisecond, 0}})
	fullErr := make(chan error, 1)
	go func() { _, err := prod.c.SyncFull(ctx(t)); fullErr <- err }()
	time.Sleep(100 * time.Millisecond) // the snapshot is on its way, held by the latency
	proxy.Reset()
	if err := <-fullErr; err == nil {
		t.Fatal("a full sync cut in the middle succeeded")
	}
	proxy.Heal()
	if got := dr.jobs(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a failed full sync changed the DR site's jobs")
	}
	if tg := must(dr.st.SyncTargetGet(ctx(t))); tg.Cursor != beforeTarget.Cursor {
		t.Fatalf("a failed full sync moved the cursor from %d to %d", beforeTarget.Cursor, tg.Cursor)
	}
	res := must(prod.c.SyncFull(ctx(t)))
	if res.Target.Cursor != res.Seq {
		t.Fatalf("full sync: %+v", res)
	}
	waitFor(t, 10*time.Second, "the full sync's result", sameJobs(prod, dr))
	must(prod.c.SyncPause(ctx(t), false))

	failback(t, prod, dr, prodSync, tokenFile)
}

// failback runs docs/sitesync.md's procedure: production fails; the DR site is
// promoted and used; production comes back as the DR site's target (a full sync from
// the DR site); then the roles are reversed again.
func failback(t *testing.T, prod, dr *site, prodSync func(*config.Config), drToken string) {
	// 1. Production fails; 2. the DR site is promoted: its held jobs resume.
	prod.stop()
	res := must(dr.c.SyncPromote(ctx(t)))
	if len(res.Resumed) == 0 || res.Target.Active {
		t.Fatalf("promote: %+v", res)
	}
	for name, v := range dr.jobs() {
		if name != "ping" && strings.Contains(v, "paused=true") {
			t.Fatalf("job %s still paused after promotion: %s", name, v)
		}
	}
	// 3. The DR site is used: changes made there.
	dr.apply("name = \"made-on-dr\"\n[noop]\n")
	// 4. Production comes back without its [sitesync] (the procedure's first step),
	// and is made the DR site's target: the DR site is restarted with production as
	// its [sitesync] target and syncs fully to it.
	prod.start(nil)
	prodToken := prod.syncToken()
	dr.stop()
	dr.start(func(c *config.Config) {
		c.SiteSync.Target = []string{"http://" + prod.node.Addr()}
		c.SiteSync.TokenFile = prodToken
		c.SiteSync.Retry = 50 * time.Millisecond
	})
	waitFor(t, 10*time.Second, "the DR site's configuration on production", func() (bool, string) {
		_, err := prod.st.JobGet(ctx(t), "made-on-dr")
		tg := must(prod.st.SyncTargetGet(ctx(t)))
		return err == nil && tg.Active && strings.HasPrefix(tg.SourceName, "dr"), fmt.Sprintf("%v %+v", err, tg)
	})
	// No loop: a cluster that is a source refuses to be a target.
	noLoop(t, dr, drToken)
	// 5. Roles reversed again: production is promoted; the DR site drops its
	// [sitesync]; production gets its [sitesync] back and fully syncs to the DR site.
	must(prod.c.SyncPromote(ctx(t)))
	dr.stop()
	dr.start(nil)
	prod.stop()
	prod.start(func(c *config.Config) {
		prodSync(c)
		c.SiteSync.Target = []string{"http://" + dr.node.Addr()}
		c.SiteSync.TokenFile = drToken
	})
	waitFor(t, 10*time.Second, "production's sender to find the promoted DR site", func() (bool, string) {
		st := must(prod.c.SyncStatus(ctx(t)))
		return strings.Contains(st.Sender.LastError, "was promoted"), fmt.Sprintf("%+v", st.Sender)
	})
	must(prod.c.SyncFull(ctx(t)))
	must(prod.c.SyncPause(ctx(t), false))
	prod.apply("name = \"back-home\"\n[noop]\n")
	waitFor(t, 10*time.Second, "production's configuration on the DR site again", sameJobs(prod, dr))
	if tg := must(dr.st.SyncTargetGet(ctx(t))); !tg.Active || !strings.HasPrefix(tg.SourceName, "prod") {
		t.Fatalf("DR target state after failback: %+v", tg)
	}
}

// noLoop checks that a source refuses a sync sent to it.
func noLoop(t *testing.T, src *site, tokenFile string) {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx(t), "POST", "http://"+src.node.Addr()+sitesync.RouteFull, strings.NewReader(`{"fingerprint":"x","name":"loop","seq":1}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 409 || !strings.Contains(string(body), "cannot be source and target") {
		t.Fatalf("a full sync sent to a source: %d %s", resp.StatusCode, body)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
