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
// through the sync), then one full sync (tandem sync full) sends them; printed: its time
// and the peak heap of this process while it ran (both clusters are in this process,
// so it counts the sender's snapshot as well as the target's).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	s := &site{n: n, st: st, dir: dir, c: client.NewConfig(client.Config{Servers: []string{n.Addr()}, Token: tok})}
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
	tok, err := dr.c.TokenCreate(context.Background(), "prod-sync", "sync", "")
	if err != nil {
		return nil, nil, err
	}
	tokenFile := filepath.Join(dr.dir, "sync.token")
	if err := os.WriteFile(tokenFile, []byte(tok.Secret), 0o600); err != nil {
		return nil, nil, err
	}
	prod, err = start("prod", "", func(c *config.Config) {
		c.SiteSync.Target = []string{"http://" + dr.n.Addr()}
		c.SiteSync.TokenFile = tokenFile
		c.SiteSync.Mode = mode
		c.SiteSync.Retry = 100 * time.Millisecond
	})
	return prod, dr, err
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
	prod, dr, err := pair(drDB, config.SiteSyncModeOnDemand)
	if err != nil {
		return err
	}
	defer dr.stop()
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
	start := time.Now()
	res, err := prod.c.SyncFull(ctx)
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		return err
	}
	n, err := dr.st.JobList(ctx)
	if err != nil {
		return err
	}
	if len(n) != jobs {
		return errors.New("the DR site has " + fmt.Sprint(len(n)) + " jobs after the full sync")
	}
	fmt.Printf("full sync: %d jobs at sequence %d in %s (%.0f jobs/s); process heap in use %d MiB before, peak %d MiB during (both sites in this process)\n",
		res.Items, res.Seq, took.Round(time.Millisecond), float64(res.Items)/took.Seconds(), base.HeapInuse>>20, peak.Load()>>20)
	return nil
}
