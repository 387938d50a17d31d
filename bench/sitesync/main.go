// Command sitesync measures the disaster-recovery site sync on loopback: two
// in-process single-node clusters (production on SQLite; the DR site on SQLite, or with
// -pg on a throwaway PostgreSQL server started through internal/pgtest, fsync off),
// production streaming to the DR site in automatic mode.
//
//	go run ./bench/sitesync [-changes 10000] [-rate 0] [-full 100000] [-pg]
//
// Stream: -changes job changes are made on production through its API, one after the
// other (creates and updates of 500 jobs), as fast as the API takes them or, with -rate,
// at most that many a second; each change's lag is the time from its commit
// on production to its commit on the DR site, both read from the repositories' change
// logs (the same host's clock). Printed: the time until the last change was applied on
// the DR site, counted from the first change, and the lag's p50, p99 and max (target:
// p99 ≤ 1 s).
//
// Full: -full jobs are put on a fresh production repository (in batches of 1000, not
// through the sync), then one full sync (tandem sync full) sends them to a DR site that
// runs in a process of its own (this program again); printed: its time, the DR site's
// resident memory before and at its peak (the target's memory), and the peak heap of
// production (this process: the sender's snapshot).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storepg"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

func main() {
	if db, ok := os.LookupEnv(drChildEnv); ok {
		os.Exit(serveDR(db))
	}
	changes := flag.Int("changes", 10000, "job changes streamed (0: skip)")
	full := flag.Int("full", 100000, "jobs sent by one full sync (0: skip)")
	rate := flag.Int("rate", 0, "job changes a second at most (0: as fast as production's API takes them)")
	pg := flag.Bool("pg", false, "the DR site on a throwaway PostgreSQL server (default: a SQLite file)")
	flag.Parse()
	if err := run(*changes, *rate, *full, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sitesync:", err)
		os.Exit(1)
	}
}

type site struct {
	n   *node.Node
	st  store.Store
	c   *client.Client
	dir string
	db  string
}

func open(db string) (store.Store, error) {
	if len(db) > 8 && db[:8] == "postgres" {
		return storepg.Open(context.Background(), db, nil)
	}
	return storesqlite.Open(context.Background(), db)
}

func start(name, db string, mod func(*config.Config)) (*site, error) {
	dir, err := os.MkdirTemp("", "tandem-bench-sitesync-")
	if err != nil {
		return nil, err
	}
	if db == "" {
		db = filepath.Join(dir, "tandem.db")
	}
	cfg := config.Default()
	cfg.DataDir, cfg.DB, cfg.Listen, cfg.NodeID = dir, db, "127.0.0.1:0", name
	cfg.ShutdownGrace = time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Finish(); err != nil {
		return nil, err
	}
	st, err := open(cfg.DB)
	if err != nil {
		return nil, err
	}
	n := node.New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := n.Start(context.Background()); err != nil {
		return nil, err
	}
	tok, err := auth.ReadBootstrapToken(dir)
	if err != nil {
		return nil, err
	}
	s := &site{n: n, st: st, dir: dir, db: cfg.DB, c: client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: tok})}
	return s, waitFor(30*time.Second, name+" to be primary", func() bool {
		st, err := s.c.Status(context.Background())
		return err == nil && st.Primary == name
	})
}

func (s *site) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.n.Stop(ctx)
	s.st.Close()
	os.RemoveAll(s.dir)
}

func waitFor(within time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// pair starts a DR site and a production cluster that syncs to it.
func pair(drDB, mode string) (prod, dr *site, err error) {
	if dr, err = start("dr", drDB, nil); err != nil {
		return nil, nil, err
	}
	tokenFile, err := syncToken(dr)
	if err != nil {
		return nil, nil, err
	}
	prod, err = startProd(dr.n.Addr(), tokenFile, mode)
	return prod, dr, err
}

// syncToken makes a token with the sync role on the DR site, in a file.
func syncToken(dr *site) (string, error) {
	tok, err := dr.c.TokenCreate(context.Background(), "prod-sync", "sync", "")
	if err != nil {
		return "", err
	}
	tokenFile := filepath.Join(dr.dir, "sync.token")
	return tokenFile, os.WriteFile(tokenFile, []byte(tok.Secret), 0o600)
}

// startProd starts production, syncing to the DR site at addr.
func startProd(addr, tokenFile, mode string) (*site, error) {
	return start("prod", "", func(c *config.Config) {
		c.SiteSync.Target = []string{"http://" + addr}
		c.SiteSync.TokenFile = tokenFile
		c.SiteSync.Mode = mode
		c.SiteSync.Retry = 100 * time.Millisecond
	})
}

// drChildEnv, set, makes this program the DR site of the full-sync measurement (its
// value: the repository, "" for a SQLite file), in a process of its own so that its
// memory is measured apart from production's.
const drChildEnv = "TANDEM_BENCH_SITESYNC_DR"

// serveDR runs the DR site of the full-sync measurement: it prints its address, the
// sync token's file and its repository on one line, and stops when its standard input
// ends.
func serveDR(db string) int {
	dr, err := start("dr", db, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/sitesync DR site:", err)
		return 1
	}
	defer dr.stop()
	tokenFile, err := syncToken(dr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/sitesync DR site:", err)
		return 1
	}
	fmt.Println(dr.n.Addr(), tokenFile, dr.db)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// childDR starts the DR site in a child process; stop ends it.
type childDR struct {
	cmd                 *exec.Cmd
	stdin               io.Closer
	addr, tokenFile, db string
}

func startChildDR(db string) (*childDR, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), drChildEnv+"="+db)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childDR{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if f := strings.Fields(line); err == nil && len(f) == 3 {
		c.addr, c.tokenFile, c.db = f[0], f[1], f[2]
		return c, nil
	}
	c.stop()
	return nil, fmt.Errorf("the DR site's process did not start: %q %v", line, err)
}

func (c *childDR) stop() {
	c.stdin.Close()
	_ = c.cmd.Wait()
}

// memory reads a process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB.
func (c *childDR) memory() (rss, peak int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil {
			rss = kb >> 10
		}
		if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
			peak = kb >> 10
		}
	}
	return rss, peak
}

func run(changes, rate, full int, pg bool) error {
	newDB := func(string) (string, error) { return "", nil }
	if pg {
		srv, err := pgtest.Start(context.Background())
		if err != nil {
			return err
		}
		defer srv.Stop()
		newDB = func(name string) (string, error) { return srv.CreateDatabase(context.Background(), name) }
		fmt.Println("dr repository: PostgreSQL (throwaway, fsync off); production: SQLite")
	} else {
		fmt.Println("dr repository: SQLite; production: SQLite")
	}
	fmt.Printf("go %s, %d CPUs\n", runtime.Version(), runtime.NumCPU())
	if changes > 0 {
		db, err := newDB("dr_stream")
		if err != nil {
			return err
		}
		if err := stream(changes, rate, db); err != nil {
			return err
		}
	}
	if full > 0 {
		db, err := newDB("dr_full")
		if err != nil {
			return err
		}
		if err := fullSync(full, db); err != nil {
			return err
		}
	}
	return nil
}

func stream(changes, rate int, drDB string) error {
	prod, dr, err := pair(drDB, config.SiteSyncModeAutomatic)
	if err != nil {
		return err
	}
	defer dr.stop()
	defer prod.stop()
	ctx := context.Background()
	if err := waitFor(30*time.Second, "the first full sync", func() bool {
		t, err := dr.st.SyncTargetGet(ctx)
		return err == nil && t.Active
	}); err != nil {
		return err
	}
	from, err := prod.st.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range changes {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		spec := fmt.Sprintf("name = \"job-%d\"\nschedule = [\"@every %dm\"]\n[http]\nurl = \"http://reports.prod/r/%d\"\n", i%500, 1+i/500, i)
		if _, err := prod.c.JobApply(ctx, []byte(spec), "toml"); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
	}
	made := time.Since(start)
	latest, err := prod.st.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	if err := waitFor(5*time.Minute, "the DR site to apply every change", func() bool {
		t, err := dr.st.SyncTargetGet(ctx)
		return err == nil && t.Cursor >= latest
	}); err != nil {
		return err
	}
	done := time.Since(start)
	committed := map[int64]time.Time{}
	for c := range changesAfter(ctx, prod.st, from) {
		committed[c.Seq] = c.At
	}
	var lags []time.Duration
	var last time.Time
	for c := range changesAfter(ctx, dr.st, 0) {
		if at, ok := committed[c.SourceSeq]; ok && c.SourceSeq > from {
			lags = append(lags, c.At.Sub(at))
			last = c.At
		}
	}
	if len(lags) != int(latest-from) {
		return fmt.Errorf("the DR site applied %d of %d changes", len(lags), latest-from)
	}
	slices.Sort(lags)
	q := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	fmt.Printf("stream: %d job changes made in %s (%.0f/s through the API, -rate %d); the last applied on the DR site %s after the first change (repository clock: %s)\n",
		len(lags), made.Round(time.Millisecond), float64(len(lags))/made.Seconds(), rate, done.Round(time.Millisecond), last.Sub(committed[from+1]).Round(time.Millisecond))
	fmt.Printf("stream lag (commit on production → commit on the DR site): p50 %s, p99 %s, max %s (target p99 ≤ 1s)\n",
		q(0.50).Round(100*time.Microsecond), q(0.99).Round(100*time.Microsecond), lags[len(lags)-1].Round(100*time.Microsecond))
	return nil
}

// changesAfter yields a repository's changes after a sequence.
func changesAfter(ctx context.Context, st store.Store, after int64) func(func(store.Change) bool) {
	return func(yield func(store.Change) bool) {
		for {
			cs, err := st.ChangeList(ctx, store.ChangeListParams{After: after, Limit: 5000})
			if err != nil || len(cs) == 0 {
				return
			}
			for _, c := range cs {
				if !yield(c) {
					return
				}
			}
			after = cs[len(cs)-1].Seq
		}
	}
}

func fullSync(jobs int, drDB string) error {
	dr, err := startChildDR(drDB)
	if err != nil {
		return err
	}
	defer dr.stop()
	prod, err := startProd(dr.addr, dr.tokenFile, config.SiteSyncModeOnDemand)
	if err != nil {
		return err
	}
	defer prod.stop()
	ctx := context.Background()
	for lo := 0; lo < jobs; lo += 1000 {
		p := store.JobApplyParams{Now: time.Now()}
		for i := lo; i < min(lo+1000, jobs); i++ {
			sp := job.Spec{Name: fmt.Sprintf("job-%06d", i), Schedule: []string{"@every 1h"}, Timezone: "UTC", Misfire: job.MisfireRunOnce,
				Overlap: job.OverlapAllow, HTTP: &job.HTTP{Method: "GET", URL: fmt.Sprintf("http://reports.prod/r/%d", i)}}
			p.Jobs = append(p.Jobs, store.JobDef{Spec: sp, Schedules: []store.ScheduleSpec{{Key: sp.ScheduleKey(0), Expr: sp.Schedule[0]}}})
		}
		if _, err := prod.st.JobApply(ctx, p); err != nil {
			return err
		}
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	drBefore, drStartPeak := dr.memory()
	start := time.Now()
	res, err := prod.c.SyncFull(ctx)
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		return err
	}
	_, drPeak := dr.memory()
	dst, err := open(dr.db)
	if err != nil {
		return err
	}
	defer dst.Close()
	n, err := dst.JobList(ctx)
	if err != nil {
		return err
	}
	if len(n) != jobs {
		return errors.New("the DR site has " + fmt.Sprint(len(n)) + " jobs after the full sync")
	}
	fmt.Printf("full sync: %d jobs at sequence %d in %s (%.0f jobs/s); the DR site's process (the target): RSS %d MiB before (peak %d MiB at start), peak %d MiB; production's heap in use %d MiB before, peak %d MiB during\n",
		res.Items, res.Seq, took.Round(time.Millisecond), float64(res.Items)/took.Seconds(), drBefore, drStartPeak, drPeak, base.HeapInuse>>20, peak.Load()>>20)
	return nil
}
