// Command failover measures how long tandem's schedules stop firing when the primary
// goes away, on real processes (internal/chaos), for SQLite and PostgreSQL.
//
//	go run ./bench/failover [-engine sqlite|postgres|both] [-trials 30] [-json]
//
// One three-node cluster (a, b, c with priorities 0, 1, 2; default lease settings) per
// engine is reused across all trials, and a job fires @every 100ms throughout. Each trial
// takes the primary away three ways, one after the other:
//
//  1. crash: kill -9 of the primary (and of the runs it executes); it is restarted once
//     measured, under the same node id, and rejoins as a standby;
//  2. freeze: SIGSTOP of the primary, then SIGCONT once measured, and it steps down;
//  3. planned: a switchover (POST /api/v1/switch) to the standby that has stood by longest.
//
// Each is measured from the signal (or the switch request) to the first run fired under
// the new epoch: the smallest created_at of the job's runs whose epoch exceeds the old
// one. created_at is recorded by the node on the same host, on the same clock as the
// harness. Runs fire only at the job's 100ms steps, so that figure includes the wait for
// the next occurrence (up to 100ms) unless one fell due during the takeover; the time to
// the new primary's "becoming primary" log line, the takeover itself, is reported next to
// it. Also reported: the largest gap between consecutive runs' created_at around
// each failover, and, over the whole run, the scheduled times fired twice (duplicates)
// and those with neither run nor missed record (lost), from the history checker.
//
// On SQLite a process frozen inside a write transaction keeps the file's write lock and
// nobody can take over until it runs again (docs/failover.md, "Limits to know"). Such a
// freeze is continued at once and taken again; how often that happened is printed.
//
// The nodes are built without the race detector: these are the figures a user gets.
// Per-trial figures go to stderr; the summary (one line per engine, or JSON with -json)
// to stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/pgtest"
)

const (
	job   = "tick"
	every = 100 * time.Millisecond
	// stepTimeout bounds each wait of a trial; a failover that takes longer is a failure
	// of the bench, reported with the nodes' last log lines.
	stepTimeout = 30 * time.Second
	// steady is how long the cluster fires undisturbed between failovers, so that each
	// one's gap is measured from a running schedule and the standbys are settled.
	steady = time.Second
)

// Targets the summary compares against.
var (
	targetCrash   = 300 * time.Millisecond
	targetFreeze  = config.LeaseTTLDefault + 300*time.Millisecond
	targetPlanned = 100 * time.Millisecond
	targetGap     = 500 * time.Millisecond
)

func main() {
	engine := flag.String("engine", "both", "sqlite, postgres or both")
	trials := flag.Int("trials", 30, "trials per engine; each takes the primary away three ways")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	var engines []string
	switch *engine {
	case "both":
		engines = []string{"sqlite", "postgres"}
	case "sqlite", "postgres":
		engines = []string{*engine}
	default:
		fmt.Fprintf(os.Stderr, "failover: -engine must be sqlite, postgres or both, got %q\n", *engine)
		os.Exit(2)
	}
	if *trials < 1 {
		fmt.Fprintln(os.Stderr, "failover: -trials must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, engines, *trials, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, engines []string, trials int, asJSON bool) error {
	dir, err := os.MkdirTemp("", "tandem-bench-failover-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tandem")
	fmt.Fprintln(os.Stderr, "building tandem …")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tandemhq/tandem/cmd/tandem").CombinedOutput(); err != nil {
		return fmt.Errorf("build tandem: %w\n%s", err, out)
	}
	var results []summary
	for _, e := range engines {
		s, err := bench(ctx, e, bin, filepath.Join(dir, e), trials)
		if err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
		results = append(results, s)
		if !asJSON {
			fmt.Println(s.line())
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(results)
	}
	return nil
}

// summary is one engine's figures. Durations are in milliseconds in the JSON.
type summary struct {
	Engine       string  `json:"engine"`
	Trials       int     `json:"trials"`
	CrashP50MS   float64 `json:"crash_p50_ms"`
	CrashP99MS   float64 `json:"crash_p99_ms"`
	FreezeP50MS  float64 `json:"freeze_p50_ms"`
	FreezeP99MS  float64 `json:"freeze_p99_ms"`
	PlannedP50MS float64 `json:"planned_p50_ms"`
	PlannedP99MS float64 `json:"planned_p99_ms"`
	// Role*: from the same instant to the new primary's "becoming primary" log line:
	// the takeover itself, without the wait for the job's next occurrence.
	RoleCrashP50MS   float64 `json:"role_crash_p50_ms"`
	RoleCrashP99MS   float64 `json:"role_crash_p99_ms"`
	RoleFreezeP50MS  float64 `json:"role_freeze_p50_ms"`
	RoleFreezeP99MS  float64 `json:"role_freeze_p99_ms"`
	RolePlannedP50MS float64 `json:"role_planned_p50_ms"`
	RolePlannedP99MS float64 `json:"role_planned_p99_ms"`
	MaxGapCrashMS    float64 `json:"max_gap_crash_ms"`
	MaxGapFreezeMS   float64 `json:"max_gap_freeze_ms"`
	MaxGapPlannedMS  float64 `json:"max_gap_planned_ms"`
	Duplicates       int     `json:"duplicates"`
	Lost             int     `json:"lost"`
	Missed           int     `json:"missed_records"`
	Occurrences      int     `json:"occurrences"`
	// FreezesInWrite counts SQLite freezes that landed inside a write transaction (and
	// were continued and taken again), of FreezesTotal.
	FreezesInWrite int      `json:"freezes_in_sqlite_write"`
	FreezesTotal   int      `json:"freezes_total"`
	Violations     []string `json:"violations,omitempty"`
	Settings       string   `json:"settings"`
	Targets        string   `json:"targets"`
	Verdict        string   `json:"verdict"`
}

func (s summary) line() string {
	return fmt.Sprintf("failover %s: first run under the new epoch: crash p50=%.0fms p99=%.0fms; freeze p50=%.0fms p99=%.0fms; planned p50=%.0fms p99=%.0fms; "+
		"role taken (log line): crash p50=%.0fms p99=%.0fms, freeze p50=%.0fms p99=%.0fms, planned p50=%.0fms p99=%.0fms; "+
		"max gap crash=%.0fms freeze=%.0fms planned=%.0fms; duplicates=%d lost=%d (of %d occurrences, %d missed records); "+
		"%strials=%d; %s; targets: %s; %s",
		s.Engine, s.CrashP50MS, s.CrashP99MS, s.FreezeP50MS, s.FreezeP99MS, s.PlannedP50MS, s.PlannedP99MS,
		s.RoleCrashP50MS, s.RoleCrashP99MS, s.RoleFreezeP50MS, s.RoleFreezeP99MS, s.RolePlannedP50MS, s.RolePlannedP99MS,
		s.MaxGapCrashMS, s.MaxGapFreezeMS, s.MaxGapPlannedMS, s.Duplicates, s.Lost, s.Occurrences, s.Missed,
		s.sqliteFreezes(), s.Trials, s.Settings, s.Targets, s.Verdict)
}

// sqliteFreezes says how many freezes had to be taken again (SQLite only).
func (s summary) sqliteFreezes() string {
	if s.Engine != "sqlite" {
		return ""
	}
	return fmt.Sprintf("freezes inside a SQLite write transaction (taken again)=%d of %d; ", s.FreezesInWrite, s.FreezesTotal)
}

// bench runs the trials on one engine's cluster.
func bench(ctx context.Context, engine, bin, dir string, trials int) (_ summary, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return summary{}, fmt.Errorf("create cluster directory: %w", err)
	}
	var db string
	if engine == "postgres" {
		srv, err := pgtest.Start(ctx)
		if err != nil {
			return summary{}, fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer srv.Stop()
		if db, err = srv.CreateDatabase(ctx, "tandem_bench"); err != nil {
			return summary{}, err
		}
	}
	c, err := chaos.New(chaos.Options{Binary: bin, Dir: dir, DB: db})
	if err != nil {
		return summary{}, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nlast log lines:\n%s", err, c.Tail(40))
		}
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	b := &bencher{c: c, engine: engine, standbySince: map[string]time.Time{}}
	if err := b.start(ctx); err != nil {
		return summary{}, err
	}
	for i := 1; i <= trials; i++ {
		if err := b.trial(ctx, i); err != nil {
			return summary{}, fmt.Errorf("trial %d: %w", i, err)
		}
	}
	return b.finish(ctx, trials)
}

// bencher holds one engine's cluster and what was measured on it.
type bencher struct {
	c      *chaos.Cluster
	engine string
	// standbySince is when each node last became a standby, to pick switch targets that
	// have settled.
	standbySince map[string]time.Time

	crash, freeze, planned          []time.Duration
	roleCrash, roleFreeze, rolePlan []time.Duration
	gapCrash, gapFreeze, gapPlanned time.Duration
	freezesInWrite, freezesTotal    int
}

func (b *bencher) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := b.c.StartWithStandbys(ctx, chaos.NodeSpec{ID: "a", Priority: 0}, chaos.NodeSpec{ID: "b", Priority: 1}, chaos.NodeSpec{ID: "c", Priority: 2}); err != nil {
		return err
	}
	for _, id := range []string{"b", "c"} {
		b.standbySince[id] = time.Now()
	}
	// Retries: a run executing on a killed node is queued again as its next attempt.
	if err := b.c.Apply(ctx, chaos.JobSpec{Name: job, Schedule: []string{"@every " + every.String()}, Retries: 3}); err != nil {
		return err
	}
	return b.steady(ctx)
}

// steady lets the job fire undisturbed for a while.
func (b *bencher) steady(ctx context.Context) error {
	select {
	case <-time.After(steady):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// primary returns the current primary and epoch.
func (b *bencher) primary(ctx context.Context) (*chaos.Node, int64, error) {
	id, epoch, err := b.c.WaitPrimary(ctx)
	if err != nil {
		return nil, 0, err
	}
	return b.c.Node(id), epoch, nil
}

func (b *bencher) trial(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 6*stepTimeout)
	defer cancel()

	// 1. crash
	p, epoch, err := b.primary(ctx)
	if err != nil {
		return err
	}
	mark, t0 := b.c.Mark(), time.Now()
	if err := p.Kill(); err != nil {
		return err
	}
	took, gap, who, err := b.measure(ctx, epoch, t0)
	if err != nil {
		return fmt.Errorf("crash of %s: %w", p.ID(), err)
	}
	role, err := b.role(ctx, mark, t0)
	if err != nil {
		return fmt.Errorf("crash of %s: %w", p.ID(), err)
	}
	b.crash, b.roleCrash, b.gapCrash = append(b.crash, took), append(b.roleCrash, role), max(b.gapCrash, gap)
	fmt.Fprintf(os.Stderr, "%s trial %d: crash of %s: %s took the role in %s, first run after %s (largest gap %s)\n", b.engine, i, p.ID(), who, ms(role), ms(took), ms(gap))
	if err := p.Restart(ctx); err != nil {
		return err
	}
	if err := b.standby(ctx, p.ID()); err != nil {
		return err
	}
	if err := b.steady(ctx); err != nil {
		return err
	}

	// 2. freeze
	if p, epoch, err = b.primary(ctx); err != nil {
		return err
	}
	if mark, t0, err = b.freezeAt(ctx, p); err != nil {
		return err
	}
	took, gap, who, err = b.measure(ctx, epoch, t0)
	if err == nil {
		role, err = b.role(ctx, mark, t0)
	}
	if err != nil {
		_ = p.Thaw()
		return fmt.Errorf("freeze of %s: %w", p.ID(), err)
	}
	b.freeze, b.roleFreeze, b.gapFreeze = append(b.freeze, took), append(b.roleFreeze, role), max(b.gapFreeze, gap)
	fmt.Fprintf(os.Stderr, "%s trial %d: freeze of %s: %s took the role in %s, first run after %s (largest gap %s)\n", b.engine, i, p.ID(), who, ms(role), ms(took), ms(gap))
	if err := p.Thaw(); err != nil {
		return err
	}
	if err := b.standby(ctx, p.ID()); err != nil {
		return err
	}
	if err := b.steady(ctx); err != nil {
		return err
	}

	// 3. planned switchover
	if p, epoch, err = b.primary(ctx); err != nil {
		return err
	}
	to := b.settledStandby(p.ID())
	mark, t0 = b.c.Mark(), time.Now()
	cctx, ccancel := context.WithTimeout(ctx, chaos.CallTimeout)
	_, err = b.c.Client().Switch(cctx, to)
	ccancel()
	if err != nil {
		return fmt.Errorf("switch from %s to %s: %w", p.ID(), to, err)
	}
	took, gap, who, err = b.measure(ctx, epoch, t0)
	if err == nil {
		role, err = b.role(ctx, mark, t0)
	}
	if err != nil {
		return fmt.Errorf("switch from %s to %s: %w", p.ID(), to, err)
	}
	if who != to {
		fmt.Fprintf(os.Stderr, "%s trial %d: switch to %s made %s primary\n", b.engine, i, to, who)
	}
	b.planned, b.rolePlan, b.gapPlanned = append(b.planned, took), append(b.rolePlan, role), max(b.gapPlanned, gap)
	fmt.Fprintf(os.Stderr, "%s trial %d: switch from %s to %s: %s took the role in %s, first run after %s (largest gap %s)\n", b.engine, i, p.ID(), to, who, ms(role), ms(took), ms(gap))
	if err := b.standby(ctx, p.ID()); err != nil {
		return err
	}
	return b.steady(ctx)
}

// freezeAt stops p with SIGSTOP at a moment it holds no SQLite write lock, and returns
// the log position and the instant of that freeze.
func (b *bencher) freezeAt(ctx context.Context, p *chaos.Node) (int, time.Time, error) {
	for tries := 1; ; tries++ {
		mark, t0 := b.c.Mark(), time.Now()
		if err := p.Freeze(); err != nil {
			return mark, t0, err
		}
		b.freezesTotal++
		inWrite, err := p.HoldsSQLiteWriteLock()
		if err != nil {
			_ = p.Thaw()
			return mark, t0, err
		}
		if !inWrite {
			return mark, t0, nil
		}
		b.freezesInWrite++
		if err := p.Thaw(); err != nil {
			return mark, t0, err
		}
		if tries == 20 {
			return mark, t0, errors.New("twenty freezes in a row landed inside a SQLite write transaction")
		}
		// Another moment of the primary's cycle.
		select {
		case <-time.After(time.Duration(17*tries) * time.Millisecond):
		case <-ctx.Done():
			return mark, t0, ctx.Err()
		}
	}
}

var becomingPrimary = regexp.MustCompile(`^becoming primary \(epoch \d+\)`)

// role returns how long after t0 a node logged that it became primary (from log
// position mark on). The line's time is the node's clock: the same host's.
func (b *bencher) role(ctx context.Context, mark int, t0 time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	l, err := b.c.WaitLog(ctx, mark, chaos.LogMatch{Pattern: becomingPrimary})
	if err != nil {
		return 0, err
	}
	return l.At.Sub(t0), nil
}

// standby waits until the node shows standing by, and notes since when.
func (b *bencher) standby(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := b.c.WaitMode(wctx, id, "standby"); err != nil {
		return err
	}
	b.standbySince[id] = time.Now()
	return nil
}

// settledStandby is the standby that has stood by longest (never the primary).
func (b *bencher) settledStandby(primary string) string {
	best := ""
	for id, since := range b.standbySince {
		if id != primary && (best == "" || since.Before(b.standbySince[best])) {
			best = id
		}
	}
	return best
}

// measure waits for the first run fired under an epoch above old, created after t0, and
// returns how long after t0 it was created, the largest gap between consecutive runs'
// creation around it, and which node's epoch it was. It waits a while after the first
// such run so that the gap is judged on both sides.
func (b *bencher) measure(ctx context.Context, old int64, t0 time.Time) (time.Duration, time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var first time.Time
	err := chaos.Poll(ctx, 10*time.Millisecond, fmt.Sprintf("a run fired under an epoch above %d", old), func(ctx context.Context) (bool, string, error) {
		rs, err := b.c.Client().RunList(ctx, client.RunListParams{Job: job, Limit: 100})
		if err != nil {
			return false, "", err
		}
		first = time.Time{}
		for _, r := range rs {
			if r.ScheduledAt != nil && r.Epoch > old && r.CreatedAt.After(t0) && (first.IsZero() || r.CreatedAt.Before(first)) {
				first = r.CreatedAt
			}
		}
		return !first.IsZero(), fmt.Sprintf("%d recent runs", len(rs)), nil
	})
	if err != nil {
		return 0, 0, "", err
	}
	// The gap around the failover: from a little before t0 to a little after the first
	// new run, once runs after it exist.
	until := first.Add(4 * every)
	var rs []api.Run
	err = chaos.Poll(ctx, 20*time.Millisecond, "runs after the failover", func(ctx context.Context) (bool, string, error) {
		var err error
		rs, err = b.c.Client().RunList(ctx, client.RunListParams{Job: job, Limit: 300})
		if err != nil {
			return false, "", err
		}
		return len(rs) > 0 && rs[0].CreatedAt.After(until), "", nil
	})
	if err != nil {
		return 0, 0, "", err
	}
	var created []time.Time
	for _, r := range rs {
		if r.ScheduledAt != nil && r.State != "missed" && r.State != "skipped" &&
			!r.CreatedAt.Before(t0.Add(-5*every)) && !r.CreatedAt.After(until) {
			created = append(created, r.CreatedAt)
		}
	}
	slices.SortFunc(created, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(created); i++ {
		gap = max(gap, created[i].Sub(created[i-1]))
	}
	st, err := b.c.Status(ctx)
	if err != nil {
		return 0, 0, "", err
	}
	return first.Sub(t0), gap, st.Primary, nil
}

// finish settles the job, checks the whole history and sums up.
func (b *bencher) finish(ctx context.Context, trials int) (summary, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*stepTimeout)
	defer cancel()
	runs, err := b.c.Settle(ctx, job)
	if err != nil {
		return summary{}, err
	}
	execs, err := b.c.ExecLog(job)
	if err != nil {
		return summary{}, err
	}
	starts, err := b.c.EpochStarts(ctx)
	if err != nil {
		return summary{}, err
	}
	rep := history.Check(history.Job{Runs: runs[job], Execs: execs, Step: every, EpochStarts: starts})
	s := summary{
		Engine: b.engine, Trials: trials,
		CrashP50MS: msf(pct(b.crash, 50)), CrashP99MS: msf(pct(b.crash, 99)),
		FreezeP50MS: msf(pct(b.freeze, 50)), FreezeP99MS: msf(pct(b.freeze, 99)),
		PlannedP50MS: msf(pct(b.planned, 50)), PlannedP99MS: msf(pct(b.planned, 99)),
		RoleCrashP50MS: msf(pct(b.roleCrash, 50)), RoleCrashP99MS: msf(pct(b.roleCrash, 99)),
		RoleFreezeP50MS: msf(pct(b.roleFreeze, 50)), RoleFreezeP99MS: msf(pct(b.roleFreeze, 99)),
		RolePlannedP50MS: msf(pct(b.rolePlan, 50)), RolePlannedP99MS: msf(pct(b.rolePlan, 99)),
		MaxGapCrashMS: msf(b.gapCrash), MaxGapFreezeMS: msf(b.gapFreeze), MaxGapPlannedMS: msf(b.gapPlanned),
		Duplicates: rep.Duplicates, Lost: rep.Lost, Occurrences: rep.Occurrences,
		FreezesInWrite: b.freezesInWrite, FreezesTotal: b.freezesTotal,
		Settings: fmt.Sprintf("one 3-node cluster reused across trials (victims restarted or continued), job @every %s, lease renew %s ttl %s margin %s, heartbeat %s x%d, nodes built without -race",
			every, config.LeaseRenewDefault, config.LeaseTTLDefault, config.LeaseMarginDefault, config.HeartbeatIntervalDefault, config.HeartbeatMaxMissedDefault),
		Targets: fmt.Sprintf("crash p99<=%s freeze p99<=%s planned p99<=%s gap across a crash<=%s duplicates=0 lost=0",
			ms(targetCrash), ms(targetFreeze), ms(targetPlanned), ms(targetGap)),
	}
	for _, r := range runs[job] {
		if r.State == "missed" {
			s.Missed++
		}
	}
	for _, v := range rep.Violations {
		s.Violations = append(s.Violations, v.Rule+": "+v.Detail)
	}
	var missed []string
	check := func(ok bool, what string) {
		if !ok {
			missed = append(missed, what)
		}
	}
	check(pct(b.crash, 99) <= targetCrash, "crash p99")
	check(pct(b.freeze, 99) <= targetFreeze, "freeze p99")
	check(pct(b.planned, 99) <= targetPlanned, "planned p99")
	check(b.gapCrash <= targetGap, "gap across a crash")
	check(rep.Duplicates == 0, "duplicates")
	check(rep.Lost == 0, "lost")
	check(len(rep.Violations) == 0, "history check")
	s.Verdict = "all targets met"
	if len(missed) > 0 {
		s.Verdict = "MISSED: " + strings.Join(missed, ", ")
	}
	if err := rep.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return s, nil
}

// pct is the p-th percentile by nearest rank (p99 of 30 samples is the largest).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func msf(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
