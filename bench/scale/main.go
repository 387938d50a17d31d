// Command scale measures tandem with 1,000,000 schedules loaded, on real processes
// (internal/chaos), for SQLite and PostgreSQL, and with the firing in one scheduler slot
// (the primary fires everything) and in several (--scheduler-slots), side by side:
//
//	go run ./bench/scale [-engine sqlite|postgres|both] [-schedules 1000000] [-slots 1,3] [-trials 10]
//
// Per engine and per number of slots, one three-node cluster (a, b, c with priorities 0,
// 1, 2; default lease settings; nodes built without -race; --scheduler-slots N) gets
// -schedules jobs of one schedule each, applied through the API in batches of -batch
// jobs. Then it measures:
//
//  1. memory: every node's VmRSS (sampled every 250ms while it fires; the largest
//     node's median and last) and VmHWM (its peak since it started) from
//     /proc/PID/status; after the takeovers, also the peak of each node that took over,
//     which never saw the load phase;
//  2. lateness: created_at minus scheduled_at of every occurrence scheduled during a
//     -steady window once all schedules are initialised. created_at is the scheduler's
//     clock when it planned the firing transaction (the commit follows within that
//     transaction's duration);
//  3. takeover, -trials times. With one slot: kill -9 of the primary while occurrences
//     are due, then the time until the harness sees the first run fired under a higher
//     epoch committed (the new primary's first fenced write; polled every 5ms, on the
//     harness's clock like the kill; the run's created_at, on the node's clock, is
//     reported too), and the lateness of the occurrences it fired that were due by then;
//     the time to the new primary's "becoming primary" log line is reported next to it.
//     With several slots: kill -9 of a slot holder (a, b, c in turn, so one trial in
//     three also kills the primary), then the time until the harness sees, for every slot
//     the victim held, a run of that slot's schedules (schedule id mod N) created after
//     the victim was reaped committed: the first firing of the slot's new holder; the time to its "firing slot"
//     log line and the lateness of the slot's occurrences due by then are reported too.
//     The sample falls due every -sample-every/-sample (10ms by default; a slot's share
//     every 30ms with three), so the first firing includes a wait of up to that for the
//     next occurrence unless one fell due during the takeover. The victim is restarted
//     and rejoins as a standby (and, with slots, gets a slot back) before the next trial.
//
// The load has to stay executable on a small machine, because each occurrence is a real
// run, dispatched to a worker and executed (-executor noop by default: in the worker's
// process, no fork; -executor true runs the command "true"): -sample jobs fire @every
// -sample-every, their start instants spread evenly over one interval so that they fire
// one at a time (1,000 every 10s: 100 runs/s), and the others fire once per -bulk-period
// (default daily, 6-field cron) at instants spread evenly over the period (1,000,000 a
// day: 11.6 runs/s). Lateness and takeover figures come mostly from the sample; memory
// and load times from the whole set.
//
// Per-phase figures go to stderr; one summary line per engine and number of slots to
// stdout, then a table of them side by side. The harness reads runs straight from the
// repository (read-only queries) and so adds little load.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/chaos"
	"github.com/tandemhq/tandem/internal/pgtest"
)

// Targets the summary compares against (the scale and failover issues).
var (
	targetRSS          = 300 << 20
	targetTakeover     = 300 * time.Millisecond
	targetSlotTakeover = 150 * time.Millisecond
	targetP50          = 5 * time.Millisecond
	targetP99          = 25 * time.Millisecond
)

// stepTimeout bounds each wait; longer is a failure of the bench.
const stepTimeout = 60 * time.Second

type settings struct {
	schedules   int
	sample      int
	sampleEvery time.Duration
	bulkPeriod  time.Duration
	batch       int
	steady      time.Duration
	trials      int
	slow        time.Duration
	exec        string // noop or true
	slots       []int  // scheduler slots, one cluster each
}

func (s settings) executorKey() string {
	if s.exec == "true" {
		return "command"
	}
	return "noop"
}

func (s settings) executor() map[string]any {
	if s.exec == "true" {
		return map[string]any{"argv": []string{"true"}}
	}
	return map[string]any{}
}

func main() {
	engine := flag.String("engine", "both", "sqlite, postgres or both")
	var s settings
	flag.IntVar(&s.schedules, "schedules", 1000000, "schedules in all (one job each)")
	flag.IntVar(&s.sample, "sample", 1000, "of which fire often (@every -sample-every, spread)")
	slots := flag.String("slots", "1,3", "scheduler slots to compare, comma separated (a cluster each)")
	flag.DurationVar(&s.sampleEvery, "sample-every", 10*time.Second, "interval of the sample schedules")
	flag.DurationVar(&s.bulkPeriod, "bulk-period", 24*time.Hour, "period of the other schedules: 24h (daily) or 1h (hourly)")
	flag.IntVar(&s.batch, "batch", 2000, "jobs per apply request")
	flag.DurationVar(&s.steady, "steady", time.Minute, "lateness and memory window")
	flag.IntVar(&s.trials, "trials", 10, "kill -9 takeovers per engine")
	flag.StringVar(&s.exec, "executor", "noop", "what a run executes: noop (in the worker, no process) or true (the command, a process per run)")
	flag.DurationVar(&s.slow, "slow", 0, "if set, list on stderr each steady-state occurrence later than this")
	flag.Parse()
	var engines []string
	switch *engine {
	case "both":
		engines = []string{"sqlite", "postgres"}
	case "sqlite", "postgres":
		engines = []string{*engine}
	default:
		fmt.Fprintf(os.Stderr, "scale: -engine must be sqlite, postgres or both, got %q\n", *engine)
		os.Exit(2)
	}
	if s.exec != "noop" && s.exec != "true" {
		fmt.Fprintln(os.Stderr, "scale: -executor must be noop or true")
		os.Exit(2)
	}
	if s.bulkPeriod != time.Hour && s.bulkPeriod != 24*time.Hour {
		fmt.Fprintln(os.Stderr, "scale: -bulk-period must be 1h or 24h")
		os.Exit(2)
	}
	if s.sample < 1 || s.sample > s.schedules || s.batch < 1 || s.trials < 1 || s.sampleEvery < time.Second {
		fmt.Fprintln(os.Stderr, "scale: need 1 <= -sample <= -schedules, -batch >= 1, -trials >= 1, -sample-every >= 1s")
		os.Exit(2)
	}
	for _, f := range strings.Split(*slots, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "scale: -slots must list numbers of slots >= 1, got %q\n", *slots)
			os.Exit(2)
		}
		s.slots = append(s.slots, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, engines, s); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, engines []string, s settings) error {
	dir, err := os.MkdirTemp("", "tandem-bench-scale-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tandem")
	logf("building tandem …")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tandemhq/tandem/cmd/tandem").CombinedOutput(); err != nil {
		return fmt.Errorf("build tandem: %w\n%s", err, out)
	}
	var done []*bencher
	for _, e := range engines {
		for _, n := range s.slots {
			b, err := bench(ctx, e, n, bin, filepath.Join(dir, fmt.Sprintf("%s-%d", e, n)), s)
			if err != nil {
				return fmt.Errorf("%s, %d slots: %w", e, n, err)
			}
			fmt.Println(b.summary())
			done = append(done, b)
		}
	}
	fmt.Print(table(done))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

// bench runs every phase on one engine's cluster and returns its summary line.
func bench(ctx context.Context, engine string, slots int, bin, dir string, s settings) (_ *bencher, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	var db string
	if engine == "postgres" {
		srv, err := pgtest.Start(ctx)
		if err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer srv.Stop()
		if db, err = srv.CreateDatabase(ctx, "tandem_scale"); err != nil {
			return nil, err
		}
	}
	c, err := chaos.New(chaos.Options{Binary: bin, Dir: dir, DB: db, Args: []string{"--scheduler-slots", strconv.Itoa(slots)}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nlast log lines:\n%s", err, c.Tail(40))
		}
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	b := &bencher{c: c, engine: engine, slots: slots, s: s}
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	if b.repo, err = openRepo(engine, c.DB()); err != nil {
		return nil, err
	}
	defer b.repo.close()
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	if err := b.steadyState(ctx); err != nil {
		return nil, err
	}
	for i := 1; i <= s.trials; i++ {
		take := b.takeover
		if slots > 1 {
			take = b.slotTakeover
		}
		if err := take(ctx, i); err != nil {
			return nil, fmt.Errorf("takeover %d: %w", i, err)
		}
	}
	return b, nil
}

// bencher holds one engine's cluster and what was measured on it.
type bencher struct {
	c      *chaos.Cluster
	repo   *repo
	engine string
	slots  int
	s      settings

	loadTook, initTook  time.Duration
	rssMedian, rssLast  int64 // bytes, the largest node's during the steady window
	rssNode             string
	hwmLoaded           int64 // largest VmHWM of a node that took the load
	hwmNew              int64 // largest VmHWM of a node that took over
	hwmLoad             int64 // largest VmHWM of any node after the load
	loadElections       int   // changes of primary while the jobs were applied
	lateness            []time.Duration
	takeovers, takeLate []time.Duration // kill to the first fenced firing seen; lateness meanwhile
	roles               []time.Duration // kill to the "becoming primary" ("firing slot") log line
	byNode              []time.Duration // kill to the first fenced run's created_at
	alsoPrimary         int             // slot takeovers whose victim was the primary too
}

func (b *bencher) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	err := b.c.StartWithStandbys(ctx, chaos.NodeSpec{ID: "a", Priority: 0}, chaos.NodeSpec{ID: "b", Priority: 1}, chaos.NodeSpec{ID: "c", Priority: 2})
	if err != nil || b.slots <= 1 {
		return err
	}
	st, err := b.c.WaitSlotsSpread(ctx, b.slots)
	if err == nil {
		logf("%s, %d slots: %s", b.engine, b.slots, chaos.FormatStatus(st))
	}
	return err
}

// jobs returns the job documents of the whole set, sample first.
func (b *bencher) jobs(now time.Time) []map[string]any {
	s := b.s
	out := make([]map[string]any, 0, s.schedules)
	base := now.Truncate(time.Hour).Add(-time.Hour)
	for i := range s.sample {
		start := base.Add(time.Duration(i) * s.sampleEvery / time.Duration(s.sample))
		out = append(out, map[string]any{"name": fmt.Sprintf("sample-%05d", i), "schedule": []string{"@every " + s.sampleEvery.String()},
			"start": start.UTC().Format(time.RFC3339Nano), s.executorKey(): s.executor()})
	}
	bulk := s.schedules - s.sample
	secs := int(s.bulkPeriod / time.Second)
	for i := range bulk {
		off := i * secs / bulk
		expr := fmt.Sprintf("%d %d * * * *", off%60, off/60%60)
		if s.bulkPeriod == 24*time.Hour {
			expr = fmt.Sprintf("%d %d %d * * *", off%60, off/60%60, off/3600)
		}
		out = append(out, map[string]any{"name": fmt.Sprintf("bulk-%06d", i), "schedule": []string{expr},
			s.executorKey(): s.executor()})
	}
	return out
}

// load applies every job and waits until the primary has initialised every schedule.
func (b *bencher) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	all := b.jobs(time.Now())
	mark, t0 := b.c.Mark(), time.Now()
	for i := 0; i < len(all); i += b.s.batch {
		data, err := json.Marshal(all[i:min(i+b.s.batch, len(all))])
		if err != nil {
			return err
		}
		actx, acancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err = b.c.Client().JobApply(actx, data, "json")
		acancel()
		if err != nil {
			return fmt.Errorf("apply jobs %d..: %w", i, err)
		}
	}
	b.loadTook = time.Since(t0)
	logf("%s: applied %d jobs in %s", b.label(), len(all), ms(b.loadTook))
	err := chaos.Poll(ctx, 100*time.Millisecond, "every schedule initialised", func(ctx context.Context) (bool, string, error) {
		n, err := b.repo.uninitialised(ctx)
		return n == 0, fmt.Sprintf("%d uninitialised", n), err
	})
	if err != nil {
		return err
	}
	b.initTook = time.Since(t0) - b.loadTook
	for _, l := range b.c.Logs()[mark:] {
		if becomingPrimary.MatchString(l.Msg) {
			b.loadElections++
		}
		if becomingPrimary.MatchString(l.Msg) || strings.HasPrefix(l.Msg, "stepping down") {
			logf("%s: during the load: %s", b.label(), l)
		}
	}
	for _, n := range b.c.Nodes() {
		if m, err := readMem(n.PID()); err == nil {
			b.hwmLoad = max(b.hwmLoad, m.hwm)
		}
	}
	logf("%s: every schedule initialised %s after the last apply; %d changes of primary during the load; largest peak RSS of a node %s",
		b.label(), ms(b.initTook), b.loadElections, mb(b.hwmLoad))
	return nil
}

// steadyState lets the loaded cluster fire for the steady window, sampling every
// node's memory, then measures the lateness of what was due in it.
func (b *bencher) steadyState(ctx context.Context) error {
	id, _, err := b.c.WaitPrimary(ctx)
	if err != nil {
		return err
	}
	if err := sleep(ctx, 5*time.Second); err != nil { // settle after the load
		return err
	}
	from := time.Now()
	rss := map[string][]int64{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Since(from) < b.s.steady {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for _, n := range b.c.Nodes() {
			if n.PID() == 0 {
				return fmt.Errorf("node %s exited while firing (%v); its last lines:\n%s", n.ID(), n.ExitErr(), b.lastLines(n.ID(), 40))
			}
			m, err := readMem(n.PID())
			if err != nil {
				return err
			}
			rss[n.ID()] = append(rss[n.ID()], m.rss)
			b.hwmLoaded = max(b.hwmLoaded, m.hwm)
		}
	}
	to := time.Now()
	for node, rs := range rss {
		slices.Sort(rs)
		if med := rs[len(rs)/2]; med > b.rssMedian {
			b.rssMedian, b.rssLast, b.rssNode = med, rs[len(rs)-1], node
		}
	}
	if err := sleep(ctx, 2*time.Second); err != nil { // let the last ones be fired
		return err
	}
	lat, err := b.repo.lateness(ctx, from, to)
	if err != nil {
		return err
	}
	b.lateness = lat
	if b.s.slow > 0 {
		if err := b.repo.listSlow(ctx, from, to, b.s.slow); err != nil {
			return err
		}
	}
	logf("%s: steady %s: primary %s; largest node RSS %s median %s, peak (VmHWM) of any node %s; %d occurrences, lateness p50 %s p99 %s max %s",
		b.label(), b.s.steady, id, b.rssNode, mb(b.rssMedian), mb(b.hwmLoaded), len(lat), ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(lat, 100)))
	return nil
}

// lastLines is the last n log lines of node.
func (b *bencher) lastLines(node string, n int) string {
	var out []string
	for _, l := range b.c.Logs() {
		if l.Node == node {
			out = append(out, l.String())
		}
	}
	return strings.Join(out[max(len(out)-n, 0):], "\n")
}

// label names the cluster in the progress lines: engine and slots.
func (b *bencher) label() string { return fmt.Sprintf("%s slots=%d", b.engine, b.slots) }

// takeover kills the primary, measures how long until the new one fires, and brings
// the victim back as a standby.
func (b *bencher) takeover(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*stepTimeout)
	defer cancel()
	id, epoch, err := b.c.WaitPrimary(ctx)
	if err != nil {
		return err
	}
	victim := b.c.Node(id)
	lastRun, err := b.repo.lastRunID(ctx)
	if err != nil {
		return err
	}
	mark, t0 := b.c.Mark(), time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	var first, seen time.Time
	err = chaos.Poll(ctx, 5*time.Millisecond, "a run fired under a higher epoch", func(ctx context.Context) (bool, string, error) {
		var err error
		first, err = b.repo.firstFiredAbove(ctx, lastRun, epoch, t0)
		seen = time.Now()
		return !first.IsZero(), "", err
	})
	if err != nil {
		return err
	}
	// seen is on the harness's clock, like t0: an upper bound (by the poll interval and
	// one read) of the commit. first is the node's created_at, on the node's clock.
	took, byNode := seen.Sub(t0), first.Sub(t0)
	l, err := b.c.WaitLog(ctx, mark, chaos.LogMatch{Pattern: becomingPrimary})
	if err != nil {
		return err
	}
	role := l.At.Sub(t0)
	newID, _, err := b.c.WaitPrimary(ctx, id)
	if err != nil {
		return err
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	late, err := b.repo.takeoverLateness(ctx, lastRun, epoch, t0, first)
	if err != nil {
		return err
	}
	m, err := readMem(b.c.Node(newID).PID())
	if err != nil {
		return err
	}
	b.hwmNew = max(b.hwmNew, m.hwm)
	b.takeovers, b.roles, b.byNode = append(b.takeovers, took), append(b.roles, role), append(b.byNode, byNode)
	b.takeLate = append(b.takeLate, late...)
	logf("%s takeover %d: kill -9 of %s, %s took the role after %s and its first fenced firing was seen committed after %s (created_at %s after); %d occurrences due meanwhile, latest %s late; its RSS %s, peak %s",
		b.label(), i, id, newID, ms(role), ms(took), ms(byNode), len(late), ms(pct(late, 100)), mb(m.rss), mb(m.hwm))
	for _, l := range b.c.Logs()[mark:] {
		if l.Node == newID && (l.Level == "WARN" || l.Level == "ERROR") {
			logf("%s takeover %d: %s", b.label(), i, l)
		}
	}
	if err := victim.Restart(ctx); err != nil {
		return err
	}
	if _, err := b.c.WaitMode(ctx, id, "standby"); err != nil {
		return err
	}
	return sleep(ctx, 3*time.Second)
}

var becomingPrimary = regexp.MustCompile(`^becoming primary \(epoch \d+\)`)

// loadavg is the machine's 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pct is the p-th percentile by nearest rank (p99 of 10 samples is the largest).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

func mb(b int64) string { return fmt.Sprintf("%.0fMB", float64(b)/(1<<20)) }
