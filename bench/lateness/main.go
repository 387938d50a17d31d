// Command lateness measures scheduling lateness on SQLite: the instant a firing
// transaction committed minus the occurrence's scheduled instant.
//
//	go run ./bench/lateness [-runs 3] [-n 10000] [-spread 60s]
//
// Scenario "spread": n one-off schedules spread evenly over -spread.
// Scenario "burst": n one-off schedules due at the same instant; reports when the last
// occurrence was committed, relative to that instant.
// Each scenario runs -runs times on a fresh repository; the summary gives medians.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/scheduler"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

func main() {
	runs := flag.Int("runs", 3, "repetitions of each scenario")
	n := flag.Int("n", 10000, "schedules")
	spread := flag.Duration("spread", time.Minute, "spread of the first scenario")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var p50s, p99s, maxs, bursts []time.Duration
	for i := range *runs {
		lat, err := measure(*n, *spread)
		if err != nil {
			fmt.Fprintln(os.Stderr, "spread:", err)
			return
		}
		p50, p99, mx := pct(lat, 50), pct(lat, 99), pct(lat, 100)
		fmt.Printf("run %d spread: n=%d p50=%s p99=%s max=%s\n", i+1, len(lat), ms(p50), ms(p99), ms(mx))
		p50s, p99s, maxs = append(p50s, p50), append(p99s, p99), append(maxs, mx)
		lat, err = measure(*n, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "burst:", err)
			return
		}
		last := pct(lat, 100)
		fmt.Printf("run %d burst: n=%d all committed within %s of the instant (p50 %s)\n", i+1, len(lat), ms(last), ms(pct(lat, 50)))
		bursts = append(bursts, last)
	}
	fmt.Printf("lateness sqlite n=%d spread=%s runs=%d: spread p50 median=%s p99 median=%s max median=%s; burst all-fired median=%s (targets: p50<=5ms p99<=25ms burst<=1s)\n",
		*n, *spread, *runs, ms(median(p50s)), ms(median(p99s)), ms(median(maxs)), ms(median(bursts)))
}

// measure applies n one-off schedules due from a start instant over spread, runs a
// scheduler until all have fired, and returns each occurrence's lateness.
func measure(n int, spread time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "tandem-lateness-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := storesqlite.Open(ctx, filepath.Join(dir, "tandem.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// Leave time to apply the jobs and load them before the first is due.
	start := time.Now().Add(15 * time.Second).Truncate(time.Second)
	p := store.JobApplyParams{Now: time.Now()}
	for i := range n {
		at := start
		if spread > 0 {
			at = start.Add(time.Duration(i) * spread / time.Duration(n))
		}
		expr := "at " + at.UTC().Format(time.RFC3339Nano)
		sp := job.Spec{Name: fmt.Sprintf("job-%05d", i), Schedule: []string{expr}, Command: &job.Command{Argv: []string{"true"}}}
		sp.Default()
		if err := sp.Validate(); err != nil {
			return nil, err
		}
		p.Jobs = append(p.Jobs, store.JobDef{Spec: sp, Schedules: []store.ScheduleSpec{{Key: sp.ScheduleKey(0), Expr: expr}}})
	}
	if _, err := st.JobApply(ctx, p); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var lat []time.Duration
	done := make(chan struct{})
	s := scheduler.New(scheduler.Params{Store: st, Log: slog.New(slog.DiscardHandler),
		Observe: func(results []store.FireResult, committed time.Time) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range results {
				for _, run := range r.Runs {
					lat = append(lat, committed.Sub(*run.ScheduledAt))
				}
			}
			if len(lat) == n {
				close(done)
			}
		}})
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		return nil, fmt.Errorf("scheduler stopped: %v", err)
	case <-time.After(spread + 2*time.Minute):
		return nil, fmt.Errorf("only %d of %d fired", len(lat), n)
	}
	if time.Now().Before(start) {
		return nil, fmt.Errorf("fired before the start instant")
	}
	cancel()
	<-errc
	return lat, nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
