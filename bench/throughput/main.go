// Command throughput measures how many on-demand runs of a no-op job tandem carries from
// enqueue to completion per second, on SQLite and PostgreSQL, with one node and with three
// nodes sharing the repository (in-process nodes, each with its own repository handle and
// worker; one of them is primary and dispatches).
//
//	go run ./bench/throughput [-engine sqlite|postgres|both] [-nodes 1,3] [-n 20000]
//	    [-reps 3] [-capacity 500] [-mode sustained,backlog] [-batch 500] [-cpuprofile FILE]
//	    [-peer-river PATH [-peer-duration 10s]] [-statements N]
//
// Modes:
//   - sustained: the runs are enqueued in batches of -batch (one repository transaction
//     each) as fast as the repository takes them while the cluster works them; the figure
//     is n ÷ (last finished_at − first created_at).
//   - backlog: the n runs are inserted in one transaction while the cluster is idle; the
//     figure is n ÷ (last finished_at − the instant that transaction committed).
//
// Every repetition uses a fresh repository and fresh nodes, checks that all n runs
// succeeded exactly once, and prints its figures on stderr; the summary on stdout has
// one line per configuration with the settings and the medians over repetitions.
//
// With -peer-river, a river binary (riverqueue/river's CLI, built elsewhere: this module
// never builds or vendors it), each PostgreSQL repetition is followed by one of `river
// bench` on the same server, and a second summary line gives River's medians and the
// ratio of tandem's median to River's (see river.go).
//
// PostgreSQL is the server named by TANDEM_TEST_POSTGRES_URL (a role that may create
// databases) or a throwaway one started through internal/pgtest (fsync off, as in the
// tests: commits wait for their WAL to be written, not flushed to disk). The nodes use the default lease and
// heartbeat settings and log only warnings.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
	_ "github.com/tandemhq/tandem/internal/store/engines" // store.Open
)

const jobName = "noop"

// Targets the summary compares against (runs/s, sustained).
var targets = map[string]float64{"sqlite": 5000, "postgres": 15000}

type settings struct {
	engine   string
	nodes    int
	capacity int
	n        int
	batch    int
	reps     int
	mode     string
	top      int // statements to print after each repetition (-statements)
}

func (s settings) String() string {
	return fmt.Sprintf("engine=%s nodes=%d capacity=%d n=%d batch=%d reps=%d mode=%s", s.engine, s.nodes, s.capacity, s.n, s.batch, s.reps, s.mode)
}

// result is one repetition's figures.
type result struct {
	rate     float64       // runs/s, enqueue (or backlog commit) to the last completion
	enqueue  float64       // runs/s the enqueuing side achieved (sustained)
	p50, p99 time.Duration // created_at to finished_at
	cpu      float64       // cores this process used on average (nodes and enqueuing)
	pgCPU    float64       // cores the PostgreSQL server used on average (-1: unknown)
	pgPerRun float64       // µs of PostgreSQL CPU per run (-1: unknown)
}

func main() {
	engine := flag.String("engine", "both", "sqlite, postgres or both")
	nodesFlag := flag.String("nodes", "1,3", "node counts, comma separated")
	n := flag.Int("n", 20000, "runs per repetition")
	reps := flag.Int("reps", 3, "repetitions of each configuration")
	capacity := flag.Int("capacity", 500, "capacity of each node (runs at once)")
	modes := flag.String("mode", "sustained,backlog", "sustained, backlog or both (comma separated)")
	batch := flag.Int("batch", 500, "runs enqueued per transaction in sustained mode")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	river := flag.String("peer-river", "", "a river binary: run `river bench` on the same PostgreSQL server, alternating repetitions, and print the ratio")
	riverFor := flag.Duration("peer-duration", 10*time.Second, "how long River's sustained repetitions run")
	top := flag.Int("statements", 0, "PostgreSQL: load pg_stat_statements and print this many top statements after each repetition")
	flag.Parse()
	var pr *peer
	if *river != "" {
		if err := checkPeer(*river); err != nil {
			fmt.Fprintln(os.Stderr, "throughput:", err)
			os.Exit(2)
		}
		pr = &peer{bin: *river, duration: *riverFor}
	}
	if err := run(*engine, *nodesFlag, *modes, *profile, pr, settings{n: *n, reps: *reps, capacity: *capacity, batch: *batch, top: *top}); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

func run(engines, nodeCounts, modes, profile string, pr *peer, base settings) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var counts []int
	for _, s := range strings.Split(nodeCounts, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("-nodes: %q is not a node count", s)
		}
		counts = append(counts, k)
	}
	ctx := context.Background()
	var list []string
	switch engines {
	case "both":
		list = []string{"sqlite", "postgres"}
	case "sqlite", "postgres":
		list = []string{engines}
	default:
		return fmt.Errorf("-engine: %q is not sqlite, postgres or both", engines)
	}
	for _, eng := range list {
		repo, err := newRepos(ctx, eng)
		if err != nil {
			return err
		}
		if eng == "postgres" && base.top > 0 {
			if err := repo.loadStatements(ctx); err != nil {
				repo.close()
				return err
			}
		}
		for _, k := range counts {
			for _, mode := range strings.Split(modes, ",") {
				s := base
				s.engine, s.nodes, s.mode = eng, k, strings.TrimSpace(mode)
				if s.mode != "sustained" && s.mode != "backlog" {
					repo.close()
					return fmt.Errorf("-mode: %q is not sustained or backlog", mode)
				}
				var p *peer
				if eng == "postgres" {
					p = pr
				}
				if err := configuration(ctx, repo, p, s); err != nil {
					repo.close()
					return fmt.Errorf("%s: %w", s, err)
				}
			}
		}
		repo.close()
	}
	return nil
}

// configuration runs the repetitions of one configuration (alternated with River's, with
// a peer) and prints its summary line.
func configuration(ctx context.Context, repo *repos, pr *peer, s settings) error {
	var rs []result
	var ps []peerResult
	for i := range s.reps {
		r, err := repetition(ctx, repo, s)
		if err != nil {
			return fmt.Errorf("repetition %d: %w", i+1, err)
		}
		fmt.Fprintf(os.Stderr, "%s rep %d: %.0f runs/s (enqueue %.0f runs/s), latency p50 %s p99 %s, cpu %.2f cores (postgres %.2f, %.0f µs/run)\n",
			s, i+1, r.rate, r.enqueue, ms(r.p50), ms(r.p99), r.cpu, r.pgCPU, r.pgPerRun)
		rs = append(rs, r)
		if pr == nil {
			continue
		}
		p, err := pr.repetition(ctx, repo, s)
		if err != nil {
			return fmt.Errorf("river repetition %d: %w", i+1, err)
		}
		fmt.Fprintf(os.Stderr, "river mode=%s rep %d: %.0f jobs/s (%d jobs), postgres %.2f cores, %.0f µs/job\n",
			s.mode, i+1, p.rate, p.jobs, p.pgCPU, p.perJob)
		ps = append(ps, p)
	}
	rates := collect(rs, func(r result) float64 { return r.rate })
	line := fmt.Sprintf("throughput %s: median %.0f runs/s (min %.0f, max %.0f); latency p50 %s p99 %s; cpu: tandem %.2f cores",
		s, median(rates), slices.Min(rates), slices.Max(rates),
		ms(time.Duration(median(collect(rs, func(r result) float64 { return float64(r.p50) })))),
		ms(time.Duration(median(collect(rs, func(r result) float64 { return float64(r.p99) })))),
		median(collect(rs, func(r result) float64 { return r.cpu })))
	if pg := median(collect(rs, func(r result) float64 { return r.pgCPU })); pg >= 0 {
		line += fmt.Sprintf(", postgres %.2f cores (%.0f µs/run)", pg, median(collect(rs, func(r result) float64 { return r.pgPerRun })))
	}
	if s.mode == "sustained" {
		line += fmt.Sprintf("; enqueue %.0f runs/s", median(collect(rs, func(r result) float64 { return r.enqueue })))
	}
	fmt.Printf("%s (target %.0f runs/s sustained; %d cores)\n", line, targets[s.engine], runtime.NumCPU())
	if len(ps) > 0 {
		rates := make([]float64, len(ps))
		for i, p := range ps {
			rates[i] = p.rate
		}
		mid := func(f func(peerResult) float64) float64 {
			v := make([]float64, len(ps))
			for i, p := range ps {
				v[i] = f(p)
			}
			return median(v)
		}
		fmt.Printf("peer river mode=%s reps=%d: median %.0f jobs/s (min %.0f, max %.0f); postgres %.2f cores (%.0f µs/job); tandem/river %.2f×, postgres CPU per run %.2f×\n",
			s.mode, len(ps), median(rates), slices.Min(rates), slices.Max(rates), mid(func(p peerResult) float64 { return p.pgCPU }),
			mid(func(p peerResult) float64 { return p.perJob }), median(collect(rs, func(r result) float64 { return r.rate }))/median(rates),
			median(collect(rs, func(r result) float64 { return r.pgPerRun }))/mid(func(p peerResult) float64 { return p.perJob }))
	}
	return nil
}

// repetition measures once on a fresh repository with fresh nodes.
func repetition(ctx context.Context, repo *repos, s settings) (result, error) {
	dir, err := os.MkdirTemp("", "tandem-throughput-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	db, drop, err := repo.create(ctx, dir)
	if err != nil {
		return result{}, err
	}
	defer drop()
	// The job, and in backlog mode the runs, go in before any node starts.
	st, err := openStore(ctx, db)
	if err != nil {
		return result{}, err
	}
	defer st.Close()
	sp := job.Spec{Name: jobName, Noop: &job.Noop{}}
	sp.Default()
	if err := sp.Validate(); err != nil {
		return result{}, err
	}
	if _, err := st.JobApply(ctx, store.JobApplyParams{Jobs: []store.JobDef{{Spec: sp}}, Now: time.Now()}); err != nil {
		return result{}, err
	}
	if s.mode == "backlog" {
		for done := 0; done < s.n; done += s.batch {
			if err := enqueue(ctx, st, min(s.batch, s.n-done)); err != nil {
				return result{}, err
			}
		}
	}
	if s.top > 0 && s.engine == "postgres" {
		if err := repo.resetStatements(ctx); err != nil {
			return result{}, err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cpu0, pg0 := cpuTime(), repo.serverCPU()
	wall0 := time.Now()
	c, err := startCluster(ctx, db, dir, s, log)
	if err != nil {
		return result{}, err
	}
	defer c.stop()
	r := result{pgCPU: -1, pgPerRun: -1}
	if s.mode == "sustained" {
		cpu0, pg0 = cpuTime(), repo.serverCPU()
		wall0 = time.Now()
		for done := 0; done < s.n; done += s.batch {
			if err := enqueue(ctx, st, min(s.batch, s.n-done)); err != nil {
				return r, err
			}
			c.runsQueued()
		}
		r.enqueue = float64(s.n) / time.Since(wall0).Seconds()
	}
	if err := waitIdle(ctx, st, s.n); err != nil {
		return r, err
	}
	wall := time.Since(wall0).Seconds()
	r.cpu = (cpuTime() - cpu0).Seconds() / wall
	if pg := repo.serverCPU(); pg0 >= 0 && pg >= 0 {
		r.pgCPU = (pg - pg0).Seconds() / wall
		r.pgPerRun = float64((pg - pg0).Microseconds()) / float64(s.n)
	}
	if s.top > 0 && s.engine == "postgres" {
		if err := repo.printStatements(ctx, db, s.top); err != nil {
			return r, err
		}
	}
	m, err := measure(ctx, sqlOf(st), s.n)
	if err != nil {
		return r, err
	}
	from := m.firstCreated
	if s.mode == "backlog" {
		from = m.firstStarted
	}
	r.rate = float64(s.n) / m.lastFinished.Sub(from).Seconds()
	r.p50, r.p99 = pct(m.latency, 50), pct(m.latency, 99)
	return r, nil
}

// enqueue creates k on-demand runs of the job in one transaction.
func enqueue(ctx context.Context, st store.Store, k int) error {
	_, err := st.RunCreateBatch(ctx, store.RunCreateBatchParams{Job: jobName, Count: k, Now: time.Now()})
	return err
}

// waitIdle waits until no run is queued, assigned or running. One statement reads what
// the repository's partial indexes answer at once (is one run queued; how many are on
// nodes), so that watching costs the cluster next to nothing however long the queue.
func waitIdle(ctx context.Context, st store.Store, n int) error {
	db := sqlOf(st)
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var active int
		err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT id FROM runs WHERE state = 'queued' LIMIT 1) AS q)
			+ (SELECT COUNT(*) FROM runs WHERE state IN ('assigned', 'running') AND node >= '')`).Scan(&active)
		if err != nil {
			return err
		}
		if active == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("runs still active after 10 minutes (%d enqueued)", n)
}

// measured is what the repository says about the runs once they are all done.
type measured struct {
	firstCreated time.Time
	firstStarted time.Time
	lastFinished time.Time
	latency      []time.Duration
}

// measure reads every run's times and checks that all n ran once and succeeded.
func measure(ctx context.Context, db *sql.DB, n int) (measured, error) {
	var m measured
	rows, err := db.QueryContext(ctx, `SELECT state, attempt, created_at, started_at, finished_at FROM runs`)
	if err != nil {
		return m, err
	}
	defer rows.Close()
	var first, firstStart, last int64
	bad := map[string]int{}
	for rows.Next() {
		var state string
		var attempt, created int64
		var started, finished sql.NullInt64
		if err := rows.Scan(&state, &attempt, &created, &started, &finished); err != nil {
			return m, err
		}
		if state != string(store.RunSucceeded) || attempt != 1 || !finished.Valid || !started.Valid {
			bad[fmt.Sprintf("%s/attempt %d", state, attempt)]++
			continue
		}
		if first == 0 || created < first {
			first = created
		}
		if firstStart == 0 || started.Int64 < firstStart {
			firstStart = started.Int64
		}
		last = max(last, finished.Int64)
		m.latency = append(m.latency, time.Duration(finished.Int64-created)*time.Microsecond)
	}
	if err := rows.Err(); err != nil {
		return m, err
	}
	if len(bad) > 0 || len(m.latency) != n {
		return m, fmt.Errorf("%d of %d runs succeeded at their first attempt; others: %v", len(m.latency), n, bad)
	}
	m.firstCreated, m.firstStarted, m.lastFinished = time.UnixMicro(first), time.UnixMicro(firstStart), time.UnixMicro(last)
	return m, nil
}

// cluster is the in-process nodes of one repetition.
type cluster struct {
	nodes  []*node.Node
	stores []store.Store
}

// startCluster starts s.nodes nodes on db (priorities 0, 1, 2 …, so n1 becomes primary)
// and waits until one is primary and every node has reported in.
func startCluster(ctx context.Context, db, dir string, s settings, log *slog.Logger) (_ *cluster, err error) {
	c := &cluster{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	for i := range s.nodes {
		cfg := config.Default()
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.NodeID)
		cfg.DB, cfg.Listen, cfg.Priority, cfg.Capacity = db, "127.0.0.1:0", i, s.capacity
		if err := cfg.Finish(); err != nil {
			return nil, err
		}
		st, err := openStore(ctx, db)
		if err != nil {
			return nil, err
		}
		c.stores = append(c.stores, st)
		nd := node.New(cfg, st, log)
		if err := nd.Start(ctx); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l, err := c.stores[0].LeaseGet(ctx, store.PrimaryLease)
		nodes, nerr := c.stores[0].NodeList(ctx)
		primary := 0
		for _, nd := range c.nodes {
			if nd.Mode() == node.ModePrimary {
				primary++
			}
		}
		if err == nil && nerr == nil && l.Holder != "" && len(nodes) == s.nodes && primary == 1 {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, errors.New("no primary with every node reported in after 30s")
}

// runsQueued tells the nodes that runs were queued, as the API does after creating one.
func (c *cluster) runsQueued() {
	for _, nd := range c.nodes {
		nd.RunsQueued()
	}
}

func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, nd := range slices.Backward(c.nodes) {
		if err := nd.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop node:", err)
		}
	}
	for _, st := range c.stores {
		st.Close()
	}
}

func openStore(ctx context.Context, db string) (store.Store, error) {
	return store.Open(ctx, db, nil)
}

// sqlOf is the database handle under a store, for the bench's own reads.
func sqlOf(st store.Store) *sql.DB {
	return st.(interface{ SQL() *sql.DB }).SQL()
}

// repos makes a fresh repository for each repetition of one engine.
type repos struct {
	engine   string
	adminURL string // PostgreSQL: a database to run CREATE DATABASE from
	srv      *pgtest.Server
	made     int
}

func newRepos(ctx context.Context, engine string) (*repos, error) {
	r := &repos{engine: engine}
	if engine != "postgres" {
		return r, nil
	}
	if ext := os.Getenv(pgtest.EnvURL); ext != "" {
		r.adminURL = ext
		return r, nil
	}
	srv, err := pgtest.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	r.srv, r.adminURL = srv, srv.URL("postgres")
	return r, nil
}

// create returns the --db value of a fresh, empty repository and a function that drops
// it once every connection to it is closed.
func (r *repos) create(ctx context.Context, dir string) (string, func(), error) {
	if r.engine != "postgres" {
		return filepath.Join(dir, "tandem.db"), func() {}, nil
	}
	r.made++
	name := pgx.Identifier{fmt.Sprintf("tandem_throughput_%d_%d", os.Getpid(), r.made)}.Sanitize()
	if err := r.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(r.adminURL)
	if err != nil {
		return "", nil, err
	}
	u.Path, u.RawPath = "/"+strings.Trim(name, `"`), ""
	drop := func() {
		if err := r.admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "drop database:", err)
		}
	}
	return u.String(), drop, nil
}

// admin runs one statement on the server's administrative database.
func (r *repos) admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, r.adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

func (r *repos) close() {
	if r.srv != nil {
		_ = r.srv.Stop()
	}
}

func collect(rs []result, f func(result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
