package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
	_ "github.com/tandemhq/tandem/internal/store/engines" // store.Open
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

type harness struct {
	t    *testing.T
	node *node.Node
	c    *client.Client
	dir  string
	st   store.Store // the node's repository
}

func start(t *testing.T, mod func(*config.Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.NodeID = dir, "127.0.0.1:0", "n1"
	cfg.ShutdownGrace = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n := node.New(cfg, st, log)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: n, c: client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: bootstrapToken(t, cfg.DataDir)}), dir: dir, st: st}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		st.Close()
	})
	return h
}

// openStore opens the configured repository, as `tandem server` does.
func openStore(cfg config.Config) (store.Store, error) {
	return store.Open(context.Background(), cfg.DB, nil)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (h *harness) apply(toml string) {
	h.t.Helper()
	if _, err := h.c.JobApply(ctx(h.t), []byte(toml), "toml"); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

// waitRuns polls until cond holds for the job's runs, or fails after the deadline.
func (h *harness) waitRuns(job string, within time.Duration, what string, cond func([]api.Run) bool) []api.Run {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		runs, err := h.c.RunList(ctx(h.t), client.RunListParams{Job: job, Limit: 1000})
		if err != nil {
			h.t.Fatal(err)
		}
		if cond(runs) {
			return runs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited %s for %s; runs: %+v", within, what, runs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func count(runs []api.Run, state string) int {
	n := 0
	for _, r := range runs {
		if r.State == state {
			n++
		}
	}
	return n
}

func TestScheduledRunsProduceOutputs(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.apply(`
name = "csv-report"
schedule = ["@every 1s"]
[command]
argv = ["sh", "-c", "echo \"run,$TANDEM_RUN_ID\" > \"$TANDEM_OUTPUT_DIR/report.csv\"; echo done"]
`)
	runs := h.waitRuns("csv-report", 20*time.Second, "two succeeded runs", func(r []api.Run) bool { return count(r, "succeeded") >= 2 })
	seen := map[time.Time]bool{}
	for _, r := range runs {
		if r.ScheduledAt == nil || seen[*r.ScheduledAt] {
			t.Fatalf("run %d: scheduled_at %v missing or fired twice", r.ID, r.ScheduledAt)
		}
		seen[*r.ScheduledAt] = true
	}
	var done api.Run
	for _, r := range runs {
		if r.State == "succeeded" {
			done = r
			break
		}
	}
	full, err := h.c.RunGet(ctx(t), done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if full.Stdout == nil || *full.Stdout != "done\n" || len(full.Outputs) != 1 || full.Outputs[0].Name != "report.csv" || full.Node != "n1" {
		t.Fatalf("run: %+v", full)
	}
	var buf bytes.Buffer
	if err := h.c.OutputGet(ctx(t), done.ID, "report.csv", &buf); err != nil {
		t.Fatal(err)
	}
	if want := "run," + itoa(done.ID) + "\n"; buf.String() != want {
		t.Fatalf("output = %q, want %q", buf.String(), want)
	}
	st, err := h.c.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Primary != "n1" || len(st.Nodes) != 1 || st.Nodes[0].Mode != "primary" || st.Epoch < 1 {
		t.Fatalf("status: %+v", st)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestOnDemandRetryTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	marker := filepath.Join(h.dir, "attempts")
	h.apply(`
[[job]]
name = "flaky"
retries = 2
retry_backoff = "50ms"
[job.command]
argv = ["sh", "-c", "echo x >> ` + marker + `; test $(wc -l < ` + marker + `) -ge 3"]

[[job]]
name = "slow"
timeout = "300ms"
[job.command]
argv = ["sleep", "30"]

[[job]]
name = "long"
[job.command]
argv = ["sleep", "30"]
`)
	c := h.c
	r, err := c.JobRun(ctx(t), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.RunWait(ctx(t), r.ID, 50*time.Millisecond)
	if err != nil || r.State != "succeeded" || r.Attempt != 3 {
		t.Fatalf("flaky: %+v %v, want succeeded on attempt 3", r, err)
	}
	r, _ = c.JobRun(ctx(t), "slow")
	r, err = c.RunWait(ctx(t), r.ID, 50*time.Millisecond)
	if err != nil || r.State != "failed" || !strings.Contains(r.Reason, "timed out") {
		t.Fatalf("slow: %+v %v, want failed by timeout", r, err)
	}
	r, _ = c.JobRun(ctx(t), "long")
	h.waitRuns("long", 10*time.Second, "the long run to start", func(rs []api.Run) bool { return count(rs, "running") == 1 })
	if _, err := c.RunCancel(ctx(t), r.ID); err != nil {
		t.Fatal(err)
	}
	r, err = c.RunWait(ctx(t), r.ID, 50*time.Millisecond)
	if err != nil || r.State != "canceled" {
		t.Fatalf("long: %+v %v, want canceled", r, err)
	}
	if _, err := c.RunCancel(ctx(t), r.ID); err == nil {
		t.Fatal("canceling a finished run succeeded")
	}
}

func TestOverlapForbidSkips(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.apply(`
name = "busy"
schedule = ["@every 1s"]
overlap = "forbid"
[command]
argv = ["sleep", "2.5"]
`)
	h.waitRuns("busy", 20*time.Second, "a skipped occurrence", func(r []api.Run) bool { return count(r, "skipped") >= 1 })
}

func TestBadJobRefusedNothingChanges(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.apply("name = \"keep\"\nschedule = [\"@hourly\"]\n[command]\nargv = [\"true\"]\n")
	cases := map[string]string{
		"schedule[0]": "name = \"keep\"\nschedule = [\"61 * * * *\"]\n[command]\nargv = [\"true\"]\n",
		"timezone":    "name = \"keep\"\ntimezone = \"Mars/Olympus\"\n[command]\nargv = [\"true\"]\n",
		"timeout":     "name = \"keep\"\ntimeout = \"-1s\"\n[command]\nargv = [\"true\"]\n",
		"command":     "name = \"keep\"\n",
		"toml":        "name = \"keep\n",
	}
	for field, body := range cases {
		_, err := h.c.JobApply(ctx(t), []byte(body), "toml")
		ce, ok := err.(*client.Error)
		if !ok || ce.Status != 400 || ce.Field != field {
			t.Errorf("%s: error %#v, want a 400 naming %s", field, err, field)
		}
	}
	j, err := h.c.JobGet(ctx(t), "keep")
	if err != nil || j.Schedule[0] != "@hourly" {
		t.Fatalf("stored job changed: %+v %v", j, err)
	}
}

func TestShutdownCancelsAfterGrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.NodeID, cfg.ShutdownGrace = dir, "127.0.0.1:0", "n1", 300*time.Millisecond
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	st, err := storesqlite.Open(context.Background(), cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(cfg, st, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: bootstrapToken(t, dir)})
	// The command says when it runs: a run's state is "running" from its assignment on,
	// before the worker has begun it.
	began := filepath.Join(t.TempDir(), "began")
	spec := fmt.Sprintf("name = \"long\"\n[command]\nargv = [\"sh\", \"-c\", \"touch %s && exec sleep 30\"]\n", began)
	if _, err := c.JobApply(ctx(t), []byte(spec), "toml"); err != nil {
		t.Fatal(err)
	}
	r, err := c.JobRun(ctx(t), "long")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Wait(t, 10*time.Second, "the command to begin", func() bool { _, err := os.Stat(began); return err == nil })
	start := time.Now()
	if err := n.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stop took %s with a 300ms grace", d)
	}
	got, err := st.RunGet(ctx(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "failed" || !strings.Contains(got.Reason, "shut down") {
		t.Fatalf("run after shutdown: state %s reason %q, want failed with the shutdown recorded", got.State, got.Reason)
	}
}

func clientParams(job string) client.RunListParams {
	return client.RunListParams{Job: job, Limit: 1000}
}

// A node whose host clock is minutes off fires at the right instants: it follows the
// repository's clock, and so do the times it records.
func TestSkewedClockFiresOnTime(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{5 * time.Minute, -3 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			h := start(t, func(c *config.Config) { c.ClockSkew = skew })
			h.apply(`
name = "tick"
schedule = ["@every 1s"]
misfire = "skip"
[command]
argv = ["true"]
`)
			runs := h.waitRuns("tick", 20*time.Second, "three succeeded runs", func(r []api.Run) bool { return count(r, "succeeded") >= 3 })
			now := time.Now()
			for _, r := range runs {
				if r.ScheduledAt == nil {
					t.Fatalf("run %d has no scheduled time", r.ID)
				}
				if d := now.Sub(*r.ScheduledAt); d < 0 || d > 20*time.Second {
					t.Fatalf("run %d scheduled at %s, %s from the true time: the skew of %s leaked", r.ID, r.ScheduledAt, d, skew)
				}
				if d := r.CreatedAt.Sub(*r.ScheduledAt); d < 0 || d > time.Second {
					t.Fatalf("run %d created %s after its scheduled time, want at once", r.ID, d)
				}
			}
		})
	}
}

// bootstrapToken reads the admin token the node's first start wrote into its data
// directory, as the CLI on its host would.
func bootstrapToken(t *testing.T, dataDir string) string {
	t.Helper()
	tok, err := auth.ReadBootstrapToken(dataDir)
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	return tok
}

// Start and Stop are safe to call twice: the second Start changes nothing (one
// listener, one data directory lock), a second Stop returns at once.
func TestStartAndStopTwice(t *testing.T) {
	h := start(t, nil)
	addr := h.node.Addr()
	if err := h.node.Start(context.Background()); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if h.node.Addr() != addr {
		t.Fatalf("second start moved the API from %s to %s", addr, h.node.Addr())
	}
	testutil.Wait(t, 10*time.Second, "the node to be primary", func() bool { return h.node.Mode() == node.ModePrimary })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := h.node.Stop(ctx); err != nil || time.Since(begin) > time.Second {
		t.Fatalf("second stop: %v after %s", err, time.Since(begin))
	}
}
