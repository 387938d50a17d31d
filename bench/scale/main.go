// Command scale measures tandem with 100,000 schedules loaded, on real processes
// (internal/chaos), for SQLite and PostgreSQL:
//
//	go run ./bench/scale [-engine sqlite|postgres|both] [-schedules 100000] [-trials 10]
//
// Per engine, one three-node cluster (a, b, c with priorities 0, 1, 2; default lease
// settings; nodes built without -race) gets -schedules jobs of one schedule each,
// applied through the API in batches of -batch jobs. Then it measures:
//
//  1. memory: the primary's VmRSS (sampled every 250ms while it fires, median and last)
//     and VmHWM (its peak since it started) from /proc/PID/status; after the
//     takeovers, also the peak of each new primary, which never saw the load phase;
//  2. lateness: created_at minus scheduled_at of every occurrence scheduled during a
//     -steady window once all schedules are initialised. created_at is the scheduler's
//     clock when it planned the firing transaction (the commit follows within that
//     transaction's duration);
//  3. takeover, -trials times: kill -9 of the primary while occurrences are due, then
//     the time until the harness sees the first run fired under a higher epoch committed
//     (the new primary's first fenced write; polled every 5ms, on the harness's clock
//     like the kill; the run's created_at, on the node's clock, is reported too), and the
//     lateness of the occurrences it fired that were due by then.
//     The sample falls due every -sample-every/-sample (100ms by default), so the first
//     fenced write includes a wait of up to that for the next occurrence unless one fell
//     due during the takeover; the time to the new primary's "becoming primary" log line
//     is reported next to it. The victim is restarted and rejoins as a standby before the
//     next trial.
//
// The load has to stay executable on a small machine, because each occurrence is a real
// run, dispatched to a worker and executed (-executor noop by default: in the worker's
// process, no fork; -executor true runs the command "true"): -sample jobs fire @every
// -sample-every, their start instants spread evenly over one interval so that they fire
// one at a time (100 every 10s: 10 runs/s), and the others fire once per -bulk-period
// (default daily, 6-field cron) at instants spread evenly over the period (100,000 a
// day: 1.2 runs/s). Lateness and takeover figures come mostly from the sample; memory
// and load times from the whole set.
//
// Per-phase figures go to stderr; one summary line per engine to stdout. The harness
// reads runs straight from the repository (read-only queries) and so adds little load.
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
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/chaos"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/pgtest"
)

// Targets the summary compares against (the scale and failover issues).
var (
	targetRSS      = 300 << 20
	targetTakeover = 300 * time.Millisecond
	targetP50      = 5 * time.Millisecond
	targetP99      = 25 * time.Millisecond
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
	flag.IntVar(&s.schedules, "schedules", 100000, "schedules in all (one job each)")
	flag.IntVar(&s.sample, "sample", 100, "of which fire often (@every -sample-every, spread)")
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
	for _, e := range engines {
		sum, err := bench(ctx, e, bin, filepath.Join(dir, e), s)
		if err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
		fmt.Println(sum)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

// bench runs every phase on one engine's cluster and returns its summary line.
func bench(ctx context.Context, engine, bin, dir string, s settings) (_ string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cluster directory: %w", err)
	}
	var db string
	if engine == "postgres" {
		srv, err := pgtest.Start(ctx)
		if err != nil {
			return "", fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer srv.Stop()
		if db, err = srv.CreateDatabase(ctx, "tandem_scale"); err != nil {
			return "", err
		}
	}
	c, err := chaos.New(chaos.Options{Binary: bin, Dir: dir, DB: db})
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nlast log lines:\n%s", err, c.Tail(40))
		}
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	b := &bencher{c: c, engine: engine, s: s}
	if err := b.start(ctx); err != nil {
		return "", err
	}
	if b.repo, err = openRepo(engine, c.DB()); err != nil {
		return "", err
	}
	defer b.repo.close()
	if err := b.load(ctx); err != nil {
		return "", err
	}
	if err := b.steadyState(ctx); err != nil {
		return "", err
	}
	for i := 1; i <= s.trials; i++ {
		if err := b.takeover(ctx, i); err != nil {
			return "", fmt.Errorf("takeover %d: %w", i, err)
		}
	}
	return b.summary(), nil
}

// bencher holds one engine's cluster and what was measured on it.
type bencher struct {
	c      *chaos.Cluster
	repo   *repo
	engine string
	s      settings

	loadTook, initTook  time.Duration
	rssMedian, rssLast  int64 // bytes, primary during the steady window
	hwmLoaded           int64 // VmHWM of the primary that took the load
	hwmNew              int64 // largest VmHWM of a primary that took over
	hwmLoad             int64 // largest VmHWM of any node after the load
	loadElections       int   // changes of primary while the jobs were applied
	lateness            []time.Duration
	takeovers, takeLate []time.Duration
	roles               []time.Duration // kill to the "becoming primary" log line
	byNode              []time.Duration // kill to the first fenced run's created_at
}

func (b *bencher) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	return b.c.StartWithStandbys(ctx, chaos.NodeSpec{ID: "a", Priority: 0}, chaos.NodeSpec{ID: "b", Priority: 1}, chaos.NodeSpec{ID: "c", Priority: 2})
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
	logf("%s: applied %d jobs in %s", b.engine, len(all), ms(b.loadTook))
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
			logf("%s: during the load: %s", b.engine, l)
		}
	}
	for _, n := range b.c.Nodes() {
		if m, err := readMem(n.PID()); err == nil {
			b.hwmLoad = max(b.hwmLoad, m.hwm)
		}
	}
	logf("%s: every schedule initialised %s after the last apply; %d changes of primary during the load; largest peak RSS of a node %s",
		b.engine, ms(b.initTook), b.loadElections, mb(b.hwmLoad))
	return nil
}

// steadyState lets the loaded cluster fire for the steady window, sampling the
// primary's memory, then measures the lateness of what was due in it.
func (b *bencher) steadyState(ctx context.Context) error {
	id, _, err := b.c.WaitPrimary(ctx)
	if err != nil {
		return err
	}
	pid := b.c.Node(id).PID()
	if err := sleep(ctx, 5*time.Second); err != nil { // settle after the load
		return err
	}
	from := time.Now()
	var rss []int64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Since(from) < b.s.steady {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		m, err := readMem(pid)
		if err != nil {
			return err
		}
		rss = append(rss, m.rss)
		b.hwmLoaded = m.hwm
	}
	to := time.Now()
	slices.Sort(rss)
	b.rssMedian, b.rssLast = rss[len(rss)/2], rss[len(rss)-1]
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
	logf("%s: steady %s: primary %s RSS median %s, peak (VmHWM) %s; %d occurrences, lateness p50 %s p99 %s max %s",
		b.engine, b.s.steady, id, mb(b.rssMedian), mb(b.hwmLoaded), len(lat), ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(lat, 100)))
	return nil
}

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
		b.engine, i, id, newID, ms(role), ms(took), ms(byNode), len(late), ms(pct(late, 100)), mb(m.rss), mb(m.hwm))
	for _, l := range b.c.Logs()[mark:] {
		if l.Node == newID && (l.Level == "WARN" || l.Level == "ERROR") {
			logf("%s takeover %d: %s", b.engine, i, l)
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

func (b *bencher) summary() string {
	s := b.s
	hwm := max(b.hwmLoaded, b.hwmNew, b.hwmLoad)
	var missed []string
	check := func(ok bool, what string) {
		if !ok {
			missed = append(missed, what)
		}
	}
	check(hwm <= int64(targetRSS), "peak RSS")
	check(pct(b.takeovers, 99) <= targetTakeover, "takeover p99")
	check(pct(b.lateness, 50) <= targetP50, "lateness p50")
	check(pct(b.lateness, 99) <= targetP99, "lateness p99")
	verdict := "all targets met"
	if len(missed) > 0 {
		verdict = "MISSED: " + strings.Join(missed, ", ")
	}
	return fmt.Sprintf("scale %s: schedules=%d applied in %s (%d changes of primary meanwhile), all initialised %s later; any node's peak RSS after the load=%s; "+
		"primary RSS median=%s last=%s peak=%s, new primaries' peak=%s; "+
		"lateness n=%d p50=%s p99=%s max=%s; takeover (kill -9 to the first fenced firing seen committed) n=%d median=%s p99=%s, by its created_at median=%s p99=%s, role taken (log line) median=%s p99=%s; due during takeover n=%d lateness p50=%s p99=%s max=%s; "+
		"settings: %d sample @every %s spread + %d at spread instants every %s, batch %d, steady %s, 3 nodes, lease renew %s ttl %s, nodes built without -race, executor %s, load average %s at the end (the machine's, shared); "+
		"targets: peak RSS<=%s takeover p99<=%s lateness p50<=%s p99<=%s; %s",
		b.engine, s.schedules, ms(b.loadTook), b.loadElections, ms(b.initTook), mb(b.hwmLoad), mb(b.rssMedian), mb(b.rssLast), mb(b.hwmLoaded), mb(b.hwmNew),
		len(b.lateness), ms(pct(b.lateness, 50)), ms(pct(b.lateness, 99)), ms(pct(b.lateness, 100)),
		len(b.takeovers), ms(pct(b.takeovers, 50)), ms(pct(b.takeovers, 99)), ms(pct(b.byNode, 50)), ms(pct(b.byNode, 99)),
		ms(pct(b.roles, 50)), ms(pct(b.roles, 99)),
		len(b.takeLate), ms(pct(b.takeLate, 50)), ms(pct(b.takeLate, 99)), ms(pct(b.takeLate, 100)),
		s.sample, s.sampleEvery, s.schedules-s.sample, s.bulkPeriod, s.batch, s.steady, config.LeaseRenewDefault, config.LeaseTTLDefault,
		s.exec, loadavg(), mb(int64(targetRSS)), ms(targetTakeover), ms(targetP50), ms(targetP99), verdict)
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
