package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/pgtest"
)

// SoakOptions configures a soak: a three-node cluster under a seeded schedule of faults.
type SoakOptions struct {
	// Binary is the tandem binary. Required.
	Binary string
	// Dir holds the cluster's files. Required; it must exist.
	Dir string
	// Engine is "sqlite" or "postgres". On PostgreSQL the soak starts a server of its
	// own (pgtest.Start), since restarting it is one of the faults.
	Engine string
	// Seed makes the fault schedule (kinds, nodes, durations, gaps) and the on-demand
	// workload's timing; the same seed replays the same schedule. Printed first.
	Seed uint64
	// Duration bounds the time faults are injected; Faults bounds their number. The soak
	// stops injecting at whichever comes first; at least one must be set.
	Duration time.Duration
	Faults   int
	// Out gets the progress: the seed, each fault, the summary. Nil: nothing.
	Out io.Writer
	// Replay says how to run this soak again (a command line), for the report.
	Replay string
	// Slots, when above 1, runs the cluster with --scheduler-slots Slots: every node
	// fires the schedules of the slots it holds, the faults hit slot holders as they hit
	// the primary, and the history check adds the slot rules (history.Job.Slots).
	Slots int
	// Site runs a DR site beside the cluster (drSite): the cluster's configuration
	// changes all through the soak, the site's node is killed and its link cut now and
	// then, and at the end its change log is judged against the cluster's (history.Sync).
	Site bool
}

// SoakResult is what a soak found.
type SoakResult struct {
	Engine string
	Seed   uint64
	Slots  int // 0 or 1: the primary fires everything
	Faults []history.Fault
	// Reports are the history checks, by job.
	Reports map[string]history.Report
	// Hard are the node log lines that show a data race, a panic or a fatal error.
	Hard []LogLine
	// FreezesInWrite counts SQLite freezes that landed inside a write transaction and
	// were continued at once (the documented limit), not counted as faults.
	FreezesInWrite int
	// Replay is the command line that runs the same soak again.
	Replay  string
	Elapsed time.Duration
	// roles are the role transitions of the nodes, for the context of a violation.
	roles []LogLine
}

// Violations counts the broken rules over every job.
func (r SoakResult) Violations() int {
	n := len(r.Hard)
	for _, rep := range r.Reports {
		n += len(rep.Violations)
	}
	return n
}

// Summary is one line: engine, seed, faults, checks.
func (r SoakResult) Summary() string {
	jobs := make([]string, 0, len(r.Reports))
	for j := range r.Reports {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	runs, occ := 0, 0
	for _, j := range jobs {
		runs += r.Reports[j].Runs
		occ += r.Reports[j].Occurrences
	}
	// "(notifications)" and "(site sync)" are checked like jobs but are none.
	jobs = slices.DeleteFunc(jobs, func(j string) bool { return strings.HasPrefix(j, "(") })
	engine := r.Engine
	if r.Slots > 1 {
		engine += fmt.Sprintf(" slots=%d", r.Slots)
	}
	s := fmt.Sprintf("soak %s seed %d: %d faults (%s) in %s; %d records over %d jobs, %d scheduled times; %d violations",
		engine, r.Seed, len(r.Faults), kindsIn(r.Faults), r.Elapsed.Round(time.Second), runs, len(jobs), occ, r.Violations())
	if r.Engine == "sqlite" {
		s += fmt.Sprintf("; %d freezes landed inside a SQLite write transaction and were taken again", r.FreezesInWrite)
	}
	return s
}

// Err is nil without violations; otherwise it lists each with the history around it, the
// faults injected near it and the role transitions then, and how to replay the seed.
func (r SoakResult) Err() error {
	if r.Violations() == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nreplay: %s", r.Summary(), r.Replay)
	for _, l := range r.Hard {
		fmt.Fprintf(&b, "\nnode failed hard: %s", l)
	}
	jobs := make([]string, 0, len(r.Reports))
	for j := range r.Reports {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		rep := r.Reports[j]
		if len(rep.Violations) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n\njob %s: %v", j, rep.Err())
		for i, v := range rep.Violations {
			if i == 5 {
				break
			}
			if v.At.IsZero() {
				continue
			}
			fmt.Fprintf(&b, "\n  near [%s] at %s:", v.Rule, v.At.Format("15:04:05.000"))
			for _, f := range r.Faults {
				if f.End.After(v.At.Add(-10*time.Second)) && f.Start.Before(v.At.Add(5*time.Second)) {
					fmt.Fprintf(&b, "\n    %s", f)
				}
			}
			for _, l := range r.roles {
				if l.At.After(v.At.Add(-10*time.Second)) && l.At.Before(v.At.Add(5*time.Second)) {
					fmt.Fprintf(&b, "\n    %s %s#%d: %s", l.At.Format("15:04:05.000"), l.Node, l.Incarnation, l.Msg)
				}
			}
		}
	}
	return errors.New(b.String())
}

// roleLine matches the log lines of role transitions.
var roleLine = regexp.MustCompile(`^(becoming primary|stepping down|suspended|resumed|node \S+ lost|firing slot|leaving slot|handing slot)`)

// soakJob is a job of the soak's workload and the policies it is checked against.
type soakJob struct {
	spec     JobSpec
	step     time.Duration // 0: on demand
	policy   *history.Policy
	duration time.Duration // how long each execution runs, for the drain rule (0: not checked)
}

// soakJobs are schedules firing every 100ms to 1s under each misfire policy (with a
// grace short enough for a takeover to make occurrences misfire) and each overlap
// policy (with runs long enough to overlap the next occurrence when delayed), an
// on-demand job, a watched on-demand job of long runs (in flight at most faults: they
// witness overlapping attempts and graceful stops), a job whose runs are delivered to
// the webhook (the receiver's URL), and a job whose runs write an output file kept in
// two copies.
func soakJobs(webhook string) []soakJob {
	const grace = time.Second
	mk := func(name string, every time.Duration, misfire string, window time.Duration, overlap, then string) soakJob {
		return soakJob{
			spec: JobSpec{Name: name, Schedule: []string{"@every " + every.String()}, Misfire: misfire, Then: then,
				Retries: 3, RetryBackoff: 200 * time.Millisecond, Overlap: overlap, MisfireGrace: grace, MisfireWindow: window},
			step:   every,
			policy: &history.Policy{Misfire: misfire, Grace: grace, Window: window, Overlap: overlap},
		}
	}
	delivered := mk("delivered", time.Second, "run-once", 0, "allow", "")
	delivered.spec.Webhook, delivered.spec.Secret = webhook, soakWebhookSecret
	kept := mk(keptJob, time.Second, "run-once", 0, "allow", KeptScript())
	kept.spec.Copies = 2
	return []soakJob{
		mk("fast-all-allow", 100*time.Millisecond, "run-all", 3*time.Second, "allow", ""),
		mk("skip-allow", 300*time.Millisecond, "skip", 0, "allow", ""),
		mk("once-forbid", 500*time.Millisecond, "run-once", 0, "forbid", "sleep 0.7"),
		mk("all-queue", time.Second, "run-all", 4*time.Second, "queue", "sleep 0.5"),
		mk("once-replace", 700*time.Millisecond, "run-once", 0, "replace", "sleep 1"),
		{spec: JobSpec{Name: "on-demand", Retries: 3, RetryBackoff: 200 * time.Millisecond, Then: "sleep 0.3"}},
		{spec: JobSpec{Name: longJob, Retries: 3, RetryBackoff: 200 * time.Millisecond, Then: "sleep 3", Watch: true}, duration: 3 * time.Second},
		delivered,
		kept,
	}
}

// keptJob is the soak's job whose runs write an output file kept in two copies.
const keptJob = "kept"

// soakWebhookSecret signs the soak's webhook deliveries.
const soakWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// soakDeliveryAttempts is the nodes' deliver.max_attempts in the soak.
const soakDeliveryAttempts = 8

// soakDeliverEnv are the nodes' [deliver] settings in the soak: claims short enough
// that one left by a killed or frozen node expires within a fault or two, and retries
// fast enough that the receiver's 503s are retried while the faults go on.
var soakDeliverEnv = []string{"TANDEM_DELIVER_CLAIM=5s", "TANDEM_DELIVER_HANDOFF=1s", "TANDEM_DELIVER_BACKOFF=200ms",
	"TANDEM_DELIVER_BACKOFF_MAX=2s", fmt.Sprintf("TANDEM_DELIVER_MAX_ATTEMPTS=%d", soakDeliveryAttempts)}

// receiverFailEvery makes the soak's receiver answer every 10th request 503.
const receiverFailEvery = 10

// longJob is the soak's watched job of long runs.
const longJob = "long"

// soakNodes are the cluster: a, b, c with priorities 0, 1, 2.
var soakNodes = []NodeSpec{{ID: "a", Priority: 0}, {ID: "b", Priority: 1}, {ID: "c", Priority: 2}}

// SupportsClockSkew reports whether the binary's server takes --clock-skew.
func SupportsClockSkew(ctx context.Context, binary string) bool {
	out, _ := exec.CommandContext(ctx, binary, "server", "--help").CombinedOutput()
	return strings.Contains(string(out), "--clock-skew")
}

// Soak starts a three-node cluster on the engine with every node's peer traffic (and,
// on PostgreSQL, its database traffic) through a proxy, runs the workload, and injects
// faults one after another from the seeded schedule, each healed before the next: kill
// -9 and restart, SIGTERM and restart, SIGSTOP for about the lease TTL, restart with the
// wall clock minutes off, node–node partitions (one way or both), resets and latency,
// and on PostgreSQL node–database partitions, resets and latency and restarts of the
// server. Then it heals everything, lets the cluster settle, and checks every job's
// history against its execution log and what was seen meanwhile.
//
// The error is a failure of the harness (a node that would not start, a cluster that
// did not settle); broken rules are in the result (see SoakResult.Err).
func Soak(ctx context.Context, o SoakOptions) (res SoakResult, err error) {
	t0 := time.Now()
	res = SoakResult{Engine: o.Engine, Seed: o.Seed, Slots: o.Slots, Reports: map[string]history.Report{}, Replay: o.Replay}
	out := func(format string, args ...any) {
		if o.Out != nil {
			fmt.Fprintf(o.Out, "%s soak %s: %s\n", time.Now().Format("15:04:05.000"), o.Engine, fmt.Sprintf(format, args...))
		}
	}
	if o.Duration <= 0 && o.Faults <= 0 {
		return res, errors.New("soak: set SoakOptions.Duration or Faults")
	}
	out("seed %d", o.Seed)
	var db string
	var pg *pgtest.Server
	switch o.Engine {
	case "sqlite":
	case "postgres":
		if pg, err = pgtest.Start(ctx); err != nil {
			return res, fmt.Errorf("soak: start PostgreSQL: %w", err)
		}
		defer func() { err = errors.Join(err, pg.Stop()) }()
		db = pg.URL("postgres")
	default:
		return res, fmt.Errorf("soak: engine %q is not sqlite or postgres", o.Engine)
	}
	rcv, err := NewReceiver(soakWebhookSecret, receiverFailEvery)
	if err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	defer rcv.Close()
	var args []string
	if o.Slots > 1 {
		args = []string{"--scheduler-slots", strconv.Itoa(o.Slots)}
	}
	var site *drSite
	if o.Site {
		if site, err = startSite(ctx, o.Binary, filepath.Join(o.Dir, "dr")); err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		defer func() { err = errors.Join(err, site.Close()) }()
		args = append(args, "--config", site.Conf)
	}
	c, err := New(Options{Binary: o.Binary, Dir: o.Dir, DB: db, Proxied: true, Env: soakDeliverEnv, Args: args})
	if err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	defer func() {
		res.Hard = c.Faults()
		res.roles = c.FindLogs(0, LogMatch{Pattern: roleLine})
		res.Elapsed = time.Since(t0)
		err = errors.Join(err, c.Close())
		if err != nil && o.Out != nil {
			fmt.Fprintf(o.Out, "soak %s seed %d: logs of every node:\n", o.Engine, o.Seed)
			c.DumpLogs(o.Out)
		}
	}()
	if _, err := c.Start(ctx, soakNodes[0]); err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	if _, _, err := c.WaitPrimary(withTimeout(ctx, 30*time.Second)); err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	if _, err := c.StartAll(ctx, soakNodes[1:]...); err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	if o.Slots > 1 {
		st, err := c.WaitSlotsSpread(withTimeout(ctx, 30*time.Second), o.Slots)
		if err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		out("%s", FormatStatus(st))
	}
	jobs := soakJobs(rcv.URL())
	for _, j := range jobs {
		if err := c.Apply(withTimeout(ctx, 30*time.Second), j.spec); err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
	}
	if _, err := c.Client().RuleApply(withTimeout(ctx, 30*time.Second), []byte(soakRules)); err != nil {
		return res, fmt.Errorf("soak: apply rules: %w", err)
	}

	rng := rand.New(rand.NewPCG(o.Seed, 0x7a6d))
	workRNG := rand.New(rand.NewPCG(o.Seed, 0x3c1))
	in := &injector{c: c, pg: pg, rng: rng, out: out}
	kinds := faultKinds(pg != nil, SupportsClockSkew(ctx, o.Binary))
	obs := &observer{c: c}
	wctx, stopWork := context.WithCancel(ctx)
	var work sync.WaitGroup
	work.Go(func() { obs.run(wctx, jobs) })
	work.Go(func() { demand(wctx, c, workRNG, "on-demand", 200*time.Millisecond, 1200*time.Millisecond) })
	longRNG := rand.New(rand.NewPCG(o.Seed, 0x10e))
	work.Go(func() { demand(wctx, c, longRNG, longJob, time.Second, 3*time.Second) })
	if site != nil {
		churnRNG, siteRNG := rand.New(rand.NewPCG(o.Seed, 0xd5)), rand.New(rand.NewPCG(o.Seed, 0xd6))
		work.Go(func() { churn(wctx, c, churnRNG) })
		work.Go(func() { site.disturb(wctx, siteRNG, out) })
	}
	defer func() {
		stopWork()
		work.Wait()
	}()

	// Let the schedules fire undisturbed first, so that every job has a history before
	// the first fault.
	sleep(ctx, 2*time.Second)
	deadline := time.Now().Add(o.Duration)
	for n := 1; ctx.Err() == nil; n++ {
		if o.Faults > 0 && n > o.Faults || o.Duration > 0 && time.Now().After(deadline) {
			break
		}
		kind := pick(rng, kinds)
		node := c.Nodes()[rng.IntN(len(soakNodes))]
		rec, err := in.inject(ctx, kind, node)
		rec.N = n
		res.Faults = append(res.Faults, rec)
		out("%s", rec)
		if err != nil {
			return res, fmt.Errorf("soak: %s: %w", rec, err)
		}
		sleep(ctx, around(rng, 0.1, 0.7))
	}
	res.FreezesInWrite = in.freezesInWrite
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	stopWork()
	work.Wait()

	out("healing and settling")
	if err := in.healAll(withTimeout(ctx, 2*time.Minute)); err != nil {
		return res, fmt.Errorf("soak: heal: %w", err)
	}
	if _, _, err := c.WaitPrimary(withTimeout(ctx, time.Minute)); err != nil {
		return res, fmt.Errorf("soak: after healing: %w", err)
	}
	if site != nil {
		if err := site.heal(withTimeout(ctx, time.Minute)); err != nil {
			return res, fmt.Errorf("soak: heal the DR site: %w", err)
		}
	}
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.spec.Name
	}
	runs, err := settleAll(withTimeout(ctx, 30*time.Minute), c, names, out)
	if err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	starts, err := c.EpochStarts(ctx)
	if err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	var terms []history.SlotTerm
	if o.Slots > 1 {
		if terms, err = c.SlotTerms(ctx); err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		out("%d slot terms over %d slots", len(terms), o.Slots)
	}
	for i, j := range jobs {
		execs, err := c.ExecLog(j.spec.Name)
		if err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		overlaps, err := ReadOverlaps(c.ExecLogPath(j.spec.Name))
		if err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		h := history.Job{Runs: runs[j.spec.Name], Execs: execs, Step: j.step, EpochStarts: starts, AllEpochs: len(starts) < 10000, Policy: j.policy,
			Sightings: obs.sightings(j.spec.Name), Overlaps: overlaps, Faults: res.Faults, Duration: j.duration,
			Slots: o.Slots, SlotTerms: terms}
		if i == 0 {
			h.LeaseEpochs = obs.leaseEpochs()
		}
		if j.spec.Webhook != "" {
			ds, err := settleDeliveries(withTimeout(ctx, 10*time.Minute), c, j.spec.Name, out)
			if err != nil {
				return res, fmt.Errorf("soak: %w", err)
			}
			h.Entries, h.Deliveries, h.DeliveryAttempts = 1, ds, soakDeliveryAttempts
			h.Received, h.Unverified = rcv.Seen()
		}
		if j.spec.Copies > 0 {
			h.Kept = true
			if h.Downloads, h.Listed, err = fetchOutputs(withTimeout(ctx, 10*time.Minute), c, h.Runs); err != nil {
				return res, fmt.Errorf("soak: %w", err)
			}
		}
		rep := history.Check(h)
		res.Reports[j.spec.Name] = rep
		out("job %s: %s", j.spec.Name, rep.Summary())
	}
	nh, err := settleNotifications(withTimeout(ctx, 5*time.Minute), c, out)
	if err != nil {
		return res, fmt.Errorf("soak: %w", err)
	}
	rep := history.Check(history.Job{Notify: nh})
	res.Reports["(notifications)"] = rep
	out("notifications: %s", rep.Summary())
	if site != nil {
		sh, err := site.checkSite(withTimeout(ctx, 3*time.Minute), o.Engine, c.DB(), out)
		if err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
		rep := history.Check(history.Job{Sync: sh})
		res.Reports["(site sync)"] = rep
		out("site sync: %s", rep.Summary())
	}
	res.Elapsed = time.Since(t0)
	out("%s", res.Summary())
	return res, nil
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(ctx, cancel) // released when it ends, whichever way
	return ctx
}

// demand asks for on-demand runs of job at random intervals between lo and hi, through
// any node that answers, until ctx ends. A request that fails may or may not have
// created a run; the history check does not count them.
func demand(ctx context.Context, c *Cluster, rng *rand.Rand, job string, lo, hi time.Duration) {
	for ctx.Err() == nil {
		sleep(ctx, lo+time.Duration(rng.Int64N(int64(hi-lo))))
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		_, _ = c.Client().JobRun(cctx, job)
		cancel()
	}
}

// observer reads every job's recent runs and the lease epoch while the soak runs, and
// keeps each run's sightings when something in it changed.
type observer struct {
	c *Cluster

	mu    sync.Mutex
	seen  map[string][]history.Sighting // by job
	last  map[int64]api.Run
	lease []history.LeaseSighting
}

// observeEvery is how often the observer looks.
const observeEvery = 500 * time.Millisecond

func (o *observer) run(ctx context.Context, jobs []soakJob) {
	o.mu.Lock()
	o.seen, o.last = map[string][]history.Sighting{}, map[int64]api.Run{}
	o.mu.Unlock()
	for ctx.Err() == nil {
		for _, j := range jobs {
			at := time.Now()
			cctx, cancel := context.WithTimeout(ctx, CallTimeout)
			rs, err := o.c.Client().RunList(cctx, client.RunListParams{Job: j.spec.Name, Limit: 100})
			cancel()
			if err == nil {
				o.add(j.spec.Name, at, rs)
			}
		}
		at := time.Now()
		for _, addr := range o.c.addrs() {
			cctx, cancel := context.WithTimeout(ctx, CallTimeout)
			st, err := client.NewConfig(client.Config{Servers: []string{addr}, Token: o.c.Token()}).Status(cctx)
			cancel()
			if err == nil {
				o.mu.Lock()
				o.lease = append(o.lease, history.LeaseSighting{At: at, Epoch: st.Epoch, Node: addr})
				o.mu.Unlock()
				break
			}
		}
		sleep(ctx, observeEvery)
	}
}

func (o *observer) add(job string, at time.Time, rs []api.Run) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range rs {
		r.Stdout, r.Stderr, r.Outputs = nil, nil, nil
		if prev, ok := o.last[r.ID]; ok && prev.State == r.State && prev.Epoch == r.Epoch && !history.CompletionChanged(prev, r) {
			continue
		}
		o.last[r.ID] = r
		o.seen[job] = append(o.seen[job], history.Sighting{At: at, Run: r})
	}
}

func (o *observer) sightings(job string) []history.Sighting {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seen[job])
}

func (o *observer) leaseEpochs() []history.LeaseSighting {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.lease)
}

// settleStall is how long settling waits without one more run becoming final: a backlog
// left by the faults drains at its own pace, a cluster that stopped working fails.
const settleStall = 90 * time.Second

// settleAll pauses the jobs and waits until every run of each is final and no job got
// a new run for Quiet (by the harness's clock: a node's clock may be off), and returns
// each job's runs from that last look. A long soak leaves many thousands of runs; each
// look reads them all, page by page.
func settleAll(ctx context.Context, c *Cluster, jobs []string, progress func(string, ...any)) (map[string][]api.Run, error) {
	for _, j := range jobs {
		err := Poll(ctx, 100*time.Millisecond, "job "+j+" paused", func(ctx context.Context) (bool, string, error) {
			_, err := c.Client().JobPause(ctx, j, true)
			return err == nil, "", err
		})
		if err != nil {
			return nil, fmt.Errorf("settle jobs: %w", err)
		}
	}
	newest := map[string]int64{}
	lastNew, lastNote, lastProgress := time.Now(), time.Now(), time.Now()
	fewest := -1 // fewest runs not final seen so far
	var note string
	for {
		out := map[string][]api.Run{}
		var open []string
		var lookErr error
		for _, j := range jobs {
			rs, err := allRuns(ctx, c, j)
			if err != nil {
				lookErr = err
				break
			}
			out[j] = rs
			for _, r := range rs {
				if r.ID > newest[j] {
					newest[j], lastNew = r.ID, time.Now()
				}
				if !history.Final(r.State) {
					open = append(open, history.FormatRun(r))
				}
			}
		}
		if lookErr == nil {
			if len(open) == 0 && time.Since(lastNew) >= Quiet {
				return out, nil
			}
			note = fmt.Sprintf("%d runs not final, e.g. [%s]", len(open), strings.Join(open[:min(len(open), 3)], "; "))
			if fewest < 0 || len(open) < fewest {
				fewest, lastProgress = len(open), time.Now()
			}
		} else {
			note = "last error: " + lookErr.Error()
		}
		if time.Since(lastNote) >= 10*time.Second {
			lastNote = time.Now()
			progress("settling: %s", note)
		}
		if time.Since(lastProgress) > settleStall {
			return nil, fmt.Errorf("settle jobs: no run became final for %s (%s)", settleStall, note)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("settle jobs: %w (%s)", ctx.Err(), note)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// allRuns reads every run of a job, newest first, in pages.
func allRuns(ctx context.Context, c *Cluster, job string) ([]api.Run, error) {
	const page = 2000
	var out []api.Run
	var before int64
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*CallTimeout)
		rs, err := c.Client().RunList(cctx, client.RunListParams{Job: job, Limit: page, Before: before})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", job, err)
		}
		for i := range rs {
			rs[i].Stdout, rs[i].Stderr, rs[i].Outputs = nil, nil, nil
		}
		out = append(out, rs...)
		if len(rs) < page {
			return out, nil
		}
		before = rs[len(rs)-1].ID
	}
}
