// Command outputs measures what output copies cost: three in-process nodes on one SQLite
// repository run -n on-demand runs that each write one file of -size bytes, with copies
// 1, 2 and 3; then one run writes a -big file that a node without a copy streams through
// fetch on demand.
//
//	go run ./bench/outputs [-n 1000] [-size 1048576] [-copies 1,2,3] [-capacity 4] [-reps 1] [-settle 0] [-big 1073741824]
//
// For each copies setting, on a fresh repository and fresh nodes: the n runs are queued in
// one transaction; the figures are runs/s (n ÷ (last finished_at − first created_at)),
// the CPU per run (this process's and its commands' user and system time from the
// queueing to the last copy, ÷ n: steadier than runs/s on a shared machine),
// the time from a run's end to its output's last needed verified copy (p50, p99), and
// copy throughput (bytes copied ÷ (last copy − first run end)). The summary on stdout
// has one line per configuration and the cost of copies against copies = 1 (target: at
// most 20 % of runs/s for copies = 2), with each repetition's against the copies = 1 run
// of its own repetition. -big 0 skips the large file; its line reports the
// fetch's time and the process's resident memory before and at most during the fetch
// (the three nodes are in this process). The data directories go under $TMPDIR
// (TMPDIR=/dev/shm to take the disk out of the figures); each configuration's files are
// emptied and flushed (sync) before the next starts, and removed when the bench ends.
// On an ext4 file system without a journal, every file and directory created steps over
// the inodes freed in the last minute (six, once their part of the inode table is dirty,
// which new files next to them make it), so a configuration would pay for the clean-ups
// before it: that is why files are emptied, not removed, between configurations; there,
// start the bench six minutes after a build or a test run, or put TMPDIR on a journaled
// file system (the README shows one in a loop file).
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
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

type settings struct {
	n        int
	size     int64
	copies   []int
	capacity int
	big      int64
	reps     int
}

func main() {
	var s settings
	var copies string
	flag.IntVar(&s.n, "n", 1000, "runs per configuration")
	flag.Int64Var(&s.size, "size", 1<<20, "bytes each run writes")
	flag.StringVar(&copies, "copies", "1,2,3", "copies settings to measure")
	flag.IntVar(&s.capacity, "capacity", 4, "runs at once per node")
	flag.Int64Var(&s.big, "big", 1<<30, "bytes of the file streamed through fetch on demand (0: skip)")
	flag.IntVar(&s.reps, "reps", 1, "repetitions of each copies setting, interleaved (medians are reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.DurationVar(&settle, "settle", 0, "pause after each configuration")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "-cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	for _, c := range strings.Split(copies, ",") {
		k, err := strconv.Atoi(c)
		if err != nil || k < 1 || k > 3 {
			fmt.Fprintln(os.Stderr, "-copies: want numbers from 1 to 3")
			os.Exit(2)
		}
		s.copies = append(s.copies, k)
	}
	err := run(s)
	removeEmptied()
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "outputs:", err)
		os.Exit(1)
	}
}

type result struct {
	copies          int
	runsPerSec      float64
	cpuPerRun       time.Duration // this process's CPU and its commands', per run
	p50, p99        time.Duration
	copyMBs         float64
	copied, durable int
}

func run(s settings) error {
	ctx := context.Background()
	// Repetitions are interleaved (1, 2, 3, 1, 2, 3 …) so that a noisy neighbour
	// weighs on every setting alike; each figure is the median over repetitions.
	reps := map[int][]result{}
	for range max(s.reps, 1) {
		for _, k := range s.copies {
			r, err := measure(ctx, s, k)
			if err != nil {
				return fmt.Errorf("copies %d: %w", k, err)
			}
			reps[k] = append(reps[k], r)
		}
	}
	var results []result
	for _, k := range s.copies {
		results = append(results, median(reps[k]))
	}
	var base result
	for _, r := range results {
		if r.copies == 1 {
			base = r
		}
	}
	for _, r := range results {
		cost := ""
		if base.runsPerSec > 0 && r.copies > 1 {
			cost = fmt.Sprintf(" cost=%.0f%% of copies=1 runs/s", 100*(1-r.runsPerSec/base.runsPerSec))
			if r.copies == 2 {
				cost += " (target ≤ 20%)"
			}
			if each := perRepetition(reps[1], reps[r.copies]); each != "" {
				cost += " (each repetition: " + each + ")"
			}
			cost += fmt.Sprintf(", CPU per run +%.0f%%", 100*(float64(r.cpuPerRun)/float64(base.cpuPerRun)-1))
		}
		fmt.Printf("outputs engine=sqlite nodes=3 n=%d size=%d copies=%d capacity=%d reps=%d: %.0f runs/s, CPU per run %.1fms, durable %d/%d, time to durable p50 %s p99 %s, copy throughput %.1f MB/s (%d copies)%s\n",
			s.n, s.size, r.copies, s.capacity, max(s.reps, 1), r.runsPerSec, float64(r.cpuPerRun)/float64(time.Millisecond), r.durable, s.n, ms(r.p50), ms(r.p99), r.copyMBs, r.copied, cost)
	}
	if s.big > 0 {
		line, err := measureBig(ctx, s)
		if err != nil {
			return fmt.Errorf("fetch on demand: %w", err)
		}
		fmt.Println(line)
	}
	return nil
}

// perRepetition lists each repetition's cost in runs/s against the copies = 1 run of the
// same repetition (measured just before it): the spread says how far a single
// repetition can be trusted on this machine.
func perRepetition(base, rs []result) string {
	if len(base) != len(rs) || len(rs) < 2 {
		return ""
	}
	each := make([]string, len(rs))
	for i, r := range rs {
		each[i] = fmt.Sprintf("%.0f%%", 100*(1-r.runsPerSec/base[i].runsPerSec))
	}
	return strings.Join(each, " ")
}

// median takes each figure's median over repetitions.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := rs[0]
	m.runsPerSec = pick(func(r result) float64 { return r.runsPerSec })
	m.cpuPerRun = time.Duration(pick(func(r result) float64 { return float64(r.cpuPerRun) }))
	m.copyMBs = pick(func(r result) float64 { return r.copyMBs })
	m.p50 = time.Duration(pick(func(r result) float64 { return float64(r.p50) }))
	m.p99 = time.Duration(pick(func(r result) float64 { return float64(r.p99) }))
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

type cluster struct {
	nodes  []*node.Node
	stores []store.Store
	dir    string
}

func startCluster(ctx context.Context, copies int, capacity int) (*cluster, error) {
	dir, err := os.MkdirTemp("", "tandem-bench-outputs-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	db := filepath.Join(dir, "tandem.db")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	for i := range 3 {
		cfg := config.Default()
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.NodeID)
		cfg.DB, cfg.Listen, cfg.Priority, cfg.Capacity = db, "127.0.0.1:0", i, capacity
		cfg.OutputCopies = copies
		cfg.Tags = []string{cfg.NodeID}
		if err := cfg.Finish(); err != nil {
			return nil, err
		}
		st, err := storesqlite.Open(ctx, db)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.stores = append(c.stores, st)
		nd := node.New(cfg, st, log)
		if err := nd.Start(ctx); err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nodes, err := c.stores[0].NodeList(ctx)
		primary := 0
		for _, nd := range c.nodes {
			if nd.Mode() == node.ModePrimary {
				primary++
			}
		}
		if err == nil && len(nodes) == 3 && primary == 1 {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stop()
	return nil, errors.New("no primary with every node reported in after 30s")
}

func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, nd := range slices.Backward(c.nodes) {
		_ = nd.Stop(ctx)
	}
	for _, st := range c.stores {
		st.Close()
	}
	// The files are emptied, and the emptied files and their directories removed when
	// the bench ends: on an ext4 file system without a journal, every file and directory
	// created steps over the inodes freed in the last minute (six, once their part of the
	// inode table is dirty, which the next configuration's creations make it), so a
	// clean-up would slow the configurations after it. Emptying frees the data and its
	// page cache, as a removal does (keeping the files whole made every configuration
	// slower than the one before, on a VM whose fresh memory is slow to touch).
	_ = filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			_ = os.Truncate(path, 0)
		}
		return nil
	})
	emptied = append(emptied, c.dir)
	// What this configuration wrote and freed goes to disk now, not while the next one
	// runs (write-back starts 30 s after a write, in the middle of a later one).
	syscall.Sync()
	time.Sleep(settle)
}

// emptied are the directories of configurations that ended, removed when the bench ends.
var emptied []string

// removeEmptied removes the emptied directories.
func removeEmptied() {
	for _, d := range emptied {
		os.RemoveAll(d)
	}
	emptied = nil
}

// cpuTime is the CPU (user and system) this process and its ended commands have used:
// from the runs' queueing to their last copy, it counts what the runs and their copies
// cost, which a noisy neighbour moves less than it moves runs/s.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// settle is the pause after each configuration (-settle).
var settle time.Duration

func apply(ctx context.Context, st store.Store, sp job.Spec) error {
	sp.Default()
	if err := sp.Validate(); err != nil {
		return err
	}
	_, err := st.JobApply(ctx, store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp}}})
	return err
}

func measure(ctx context.Context, s settings, copies int) (result, error) {
	res := result{copies: copies}
	c, err := startCluster(ctx, copies, s.capacity)
	if err != nil {
		return res, err
	}
	defer c.stop()
	st := c.stores[0]
	script := fmt.Sprintf("head -c %d /dev/urandom > \"$TANDEM_OUTPUT_DIR/out.bin\"", s.size)
	if err := apply(ctx, st, job.Spec{Name: "out", Copies: copies, Command: &job.Command{Argv: []string{"sh", "-c", script}}}); err != nil {
		return res, err
	}
	fmt.Fprintf(os.Stderr, "copies %d: %d runs of %d bytes …\n", copies, s.n, s.size)
	cpu0 := cpuTime()
	if _, err := st.RunCreateBatch(ctx, store.RunCreateBatchParams{Job: "out", Count: s.n, Now: time.Now()}); err != nil {
		return res, err
	}
	for _, nd := range c.nodes {
		nd.RunsQueued()
	}
	deadline := time.Now().Add(10 * time.Minute)
	var outs []store.Output
	for {
		if time.Now().After(deadline) {
			return res, errors.New("the runs and their copies did not finish within 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
		counts, err := st.RunCounts(ctx)
		if err != nil || len(counts) > 0 {
			continue // runs still active
		}
		if outs, err = st.OutputFind(ctx, store.OutputFindParams{Limit: 10 * s.n}); err != nil {
			return res, err
		}
		done := 0
		for _, o := range outs {
			if verified(o) >= copies {
				done++
			}
		}
		if done >= s.n {
			break
		}
	}
	res.cpuPerRun = (cpuTime() - cpu0) / time.Duration(s.n)
	runs, err := st.RunList(ctx, store.RunListParams{Job: "out", Limit: s.n})
	if err != nil {
		return res, err
	}
	var first, last time.Time
	for _, r := range runs {
		if r.State != store.RunSucceeded {
			return res, fmt.Errorf("run %d %s: %s", r.ID, r.State, r.Reason)
		}
		if first.IsZero() || r.CreatedAt.Before(first) {
			first = r.CreatedAt
		}
		if r.FinishedAt.After(last) {
			last = *r.FinishedAt
		}
	}
	res.runsPerSec = float64(len(runs)) / last.Sub(first).Seconds()
	var lags []time.Duration
	var firstEnd, lastCopy time.Time
	for _, o := range outs {
		var at []time.Time
		for _, h := range o.Holders {
			if h.Verified() {
				at = append(at, *h.VerifiedAt)
			}
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		if len(at) < copies {
			continue
		}
		res.durable++
		res.copied += len(at) - 1
		lags = append(lags, at[copies-1].Sub(at[0]))
		if firstEnd.IsZero() || at[0].Before(firstEnd) {
			firstEnd = at[0]
		}
		if at[len(at)-1].After(lastCopy) {
			lastCopy = at[len(at)-1]
		}
	}
	slices.Sort(lags)
	if len(lags) > 0 {
		res.p50, res.p99 = lags[len(lags)/2], lags[min(len(lags)-1, len(lags)*99/100)]
	}
	if res.copied > 0 {
		res.copyMBs = float64(int64(res.copied)*s.size) / 1e6 / lastCopy.Sub(firstEnd).Seconds()
	}
	fmt.Fprintf(os.Stderr, "copies %d: %.0f runs/s, CPU per run %.1fms, %d copies made\n", copies, res.runsPerSec, float64(res.cpuPerRun)/float64(time.Millisecond), res.copied)
	return res, nil
}

func verified(o store.Output) int {
	n := 0
	for _, h := range o.Holders {
		if h.Verified() {
			n++
		}
	}
	return n
}

// measureBig runs one job writing s.big bytes on n1 (copies 1) and downloads the file
// through n3, which fetches it from n1 on demand, sampling this process's RSS meanwhile.
func measureBig(ctx context.Context, s settings) (string, error) {
	c, err := startCluster(ctx, 1, s.capacity)
	if err != nil {
		return "", err
	}
	defer c.stop()
	st := c.stores[0]
	script := fmt.Sprintf("head -c %d /dev/urandom > \"$TANDEM_OUTPUT_DIR/big.bin\"", s.big)
	if err := apply(ctx, st, job.Spec{Name: "big", Copies: 1, Tags: []string{"n1"}, Timeout: job.Duration(10 * time.Minute),
		Command: &job.Command{Argv: []string{"sh", "-c", script}}}); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "one run writing %d bytes …\n", s.big)
	r, err := st.RunCreate(ctx, store.RunCreateParams{Job: "big", Trigger: store.TriggerManual, Now: time.Now()})
	if err != nil {
		return "", err
	}
	c.nodes[0].RunsQueued()
	for {
		got, err := st.RunGet(ctx, r.ID)
		if err != nil {
			return "", err
		}
		if got.State.Final() {
			if got.State != store.RunSucceeded {
				return "", fmt.Errorf("run %s: %s", got.State, got.Reason)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := rssKB()
	var peak atomic.Int64
	peak.Store(before)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v := rssKB(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	var token string // the bootstrap admin token, in the data directory of the node that made it
	for _, n := range c.nodes {
		if t, err := auth.ReadBootstrapToken(filepath.Join(c.dir, n.NodeID())); err == nil {
			token = t
		}
	}
	cl := client.NewConfig(client.Config{Servers: []string{"http://" + c.nodes[2].Addr()}, Token: token})
	start := time.Now()
	cw := &counter{}
	err = cl.OutputGet(ctx, r.ID, "big.bin", cw)
	took := time.Since(start)
	close(stop)
	if err != nil {
		return "", err
	}
	if cw.n != s.big {
		return "", fmt.Errorf("fetched %d bytes, want %d", cw.n, s.big)
	}
	return fmt.Sprintf("outputs fetch-on-demand size=%d through a node without a copy: %.1f s (%.0f MB/s: the holder checks its copy, streams it, the fetching node checks and keeps it, as it arrives), RSS %d MB before, %d MB at most during (flat: not held in memory)",
		s.big, took.Seconds(), float64(s.big)/1e6/took.Seconds(), before/1024, peak.Load()/1024), nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*counter)(nil)

// rssKB is this process's resident set size in KiB.
func rssKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
