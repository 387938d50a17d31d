// Command deliver measures delivery: on-demand runs of a no-op job with one [[deliver]]
// entry, a signed webhook to a receiver in this process or an email to an in-process
// SMTP server (emersion/go-smtp), carried by in-process nodes on SQLite from the run's
// end (its finished_at) to the receiver's first receipt of its delivery key.
//
//	go run ./bench/deliver [-webhooks 10000] [-emails 1000] [-nodes 1]
//	    [-mode paced,burst] [-webhook-rate 500] [-email-rate 100] [-cpuprofile FILE]
//
// Modes:
//   - paced: the runs are enqueued at a steady rate (-webhook-rate, -email-rate runs/s);
//     the target, p99 ≤ 1 s from run end to webhook received, is for this mode. A rate
//     above what the nodes carry (runs and deliveries together) measures a queue.
//   - burst: all runs are enqueued at once (in transactions of 500); deliveries/s is what
//     the nodes carry with a backlog, n ÷ (last receipt − first run end).
//
// Every configuration uses a fresh repository and fresh nodes, checks that every record
// ended delivered at its first attempt and that the receiver got every key (a key got
// twice is counted, not an error: delivery is at-least-once), and prints its figures;
// the summary on stdout has one line per configuration with the settings and the
// target, progress goes to stderr.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

const (
	jobName = "delivered"
	secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	batch   = 500
)

// target is the paced webhook latency the summary compares against.
const target = time.Second

type settings struct {
	channel string // webhook or email
	mode    string // paced or burst
	nodes   int
	n       int
	rate    int // runs/s enqueued (paced)
}

func (s settings) String() string {
	r := "-"
	if s.mode == "paced" {
		r = fmt.Sprintf("%d/s", s.rate)
	}
	return fmt.Sprintf("channel=%s mode=%s nodes=%d n=%d rate=%s engine=sqlite", s.channel, s.mode, s.nodes, s.n, r)
}

func main() {
	webhooks := flag.Int("webhooks", 10000, "runs delivered by webhook per configuration (0: none)")
	emails := flag.Int("emails", 1000, "runs delivered by email per configuration (0: none)")
	nodes := flag.Int("nodes", 1, "in-process nodes sharing the repository")
	modes := flag.String("mode", "paced,burst", "paced, burst or both (comma separated)")
	webhookRate := flag.Int("webhook-rate", 500, "runs/s enqueued in paced mode, webhook")
	emailRate := flag.Int("email-rate", 100, "runs/s enqueued in paced mode, email")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "deliver: -cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if *nodes < 1 || *webhookRate < 1 || *emailRate < 1 {
		fmt.Fprintln(os.Stderr, "deliver: -nodes and the rates must be at least 1")
		os.Exit(2)
	}
	for _, ch := range []struct {
		name string
		n    int
		rate int
	}{{"webhook", *webhooks, *webhookRate}, {"email", *emails, *emailRate}} {
		if ch.n <= 0 {
			continue
		}
		for _, mode := range strings.Split(*modes, ",") {
			s := settings{channel: ch.name, mode: strings.TrimSpace(mode), nodes: *nodes, n: ch.n, rate: ch.rate}
			if s.mode != "paced" && s.mode != "burst" {
				fmt.Fprintf(os.Stderr, "deliver: -mode: %q is not paced or burst\n", mode)
				os.Exit(2)
			}
			if err := configuration(context.Background(), s); err != nil {
				fmt.Fprintf(os.Stderr, "deliver: %s: %v\n", s, err)
				os.Exit(1)
			}
		}
	}
}

// receipts are the first receipt of each delivery key, and how many came again.
type receipts struct {
	mu     sync.Mutex
	first  map[string]time.Time
	again  int
	failed int // requests that did not verify, or mails without a key
}

func newReceipts() *receipts { return &receipts{first: map[string]time.Time{}} }

func (r *receipts) got(key string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if key == "" {
		r.failed++
		return
	}
	if _, dup := r.first[key]; dup {
		r.again++
		return
	}
	r.first[key] = at
}

func (r *receipts) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.first)
}

// webhookReceiver verifies each request's Standard Webhooks signature and answers 204.
func webhookReceiver(rc *receipts) (*httptest.Server, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		b, err := io.ReadAll(req.Body)
		if err == nil {
			err = wh.Verify(b, req.Header)
		}
		if err != nil {
			rc.got("", at)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rc.got(req.Header.Get("webhook-id"), at)
		w.WriteHeader(http.StatusNoContent)
	})), nil
}

// mailbox is an SMTP backend that notes each mail's X-Tandem-Delivery key.
type mailbox struct{ rc *receipts }

var deliveryHeader = regexp.MustCompile(`(?m)^X-Tandem-Delivery: (\S+)\r?$`)

func (b mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return mailSession(b), nil }

type mailSession mailbox

func (mailSession) Reset()                               {}
func (mailSession) Logout() error                        { return nil }
func (mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	key := ""
	if m := deliveryHeader.FindSubmatch(b); m != nil {
		key = string(m[1])
	}
	s.rc.got(key, time.Now())
	return nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

// configuration measures one configuration on a fresh repository and prints its line.
func configuration(ctx context.Context, s settings) error {
	dir, err := os.MkdirTemp("", "tandem-deliver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rc := newReceipts()
	entry := job.Deliver{}
	var smtpCfg config.SMTP
	switch s.channel {
	case "webhook":
		srv, err := webhookReceiver(rc)
		if err != nil {
			return err
		}
		defer srv.Close()
		entry.Webhook, entry.Secret = srv.URL, secret
	case "email":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := smtp.NewServer(mailbox{rc})
		srv.Domain, srv.ErrorLog = "localhost", quiet{}
		srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		entry.Email = []string{"sales-leads@example.com"}
		smtpCfg = config.SMTP{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "tandem@example.com", TLS: "none",
			Timeout: 10 * time.Second}
	}
	db := filepath.Join(dir, "tandem.db")
	st, err := storesqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	sp := job.Spec{Name: jobName, Noop: &job.Noop{}, Deliver: []job.Deliver{entry}}
	sp.Default()
	if err := sp.Validate(); err != nil {
		return err
	}
	if _, err := st.JobApply(ctx, store.JobApplyParams{Jobs: []store.JobDef{{Spec: sp}}, Now: time.Now()}); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := startCluster(ctx, db, dir, s.nodes, smtpCfg, log)
	if err != nil {
		return err
	}
	defer c.stop()

	t0 := time.Now()
	if err := enqueueAll(ctx, st, c, s); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d runs enqueued in %s\n", s, s.n, time.Since(t0).Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Minute)
	for rc.count() < s.n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d deliveries received after 10 minutes", rc.count(), s.n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := measure(ctx, st, rc, s.n)
	if err != nil {
		return err
	}
	rate := float64(s.n) / m.last.Sub(m.first).Seconds()
	fmt.Fprintf(os.Stderr, "%s: %d received in %s after the first run ended\n", s, s.n, m.last.Sub(m.first).Round(time.Millisecond))
	line := fmt.Sprintf("deliver %s: %.0f deliveries/s; run end to received p50 %s p99 %s max %s; received twice %d",
		s, rate, ms(pct(m.latency, 50)), ms(pct(m.latency, 99)), ms(slices.Max(m.latency)), m.again)
	switch {
	case s.channel == "webhook" && s.mode == "paced":
		verdict := "met"
		if pct(m.latency, 99) > target {
			verdict = "missed"
		}
		line += fmt.Sprintf(" (target p99 ≤ %s with a healthy receiver: %s; %d cores)", target, verdict, runtime.NumCPU())
	default:
		line += fmt.Sprintf(" (no target; %d cores)", runtime.NumCPU())
	}
	fmt.Println(line)
	return nil
}

// enqueueAll creates the n runs: paced, a batch every 10ms at s.rate; burst, all at once.
func enqueueAll(ctx context.Context, st store.Store, c *cluster, s settings) error {
	if s.mode == "burst" {
		for done := 0; done < s.n; done += batch {
			if _, err := st.RunCreateBatch(ctx, store.RunCreateBatchParams{Job: jobName, Count: min(batch, s.n-done), Now: time.Now()}); err != nil {
				return err
			}
			c.runsQueued()
		}
		return nil
	}
	const tick = 10 * time.Millisecond
	start := time.Now()
	for done := 0; done < s.n; {
		due := min(s.n, int(time.Since(start).Seconds()*float64(s.rate))+1)
		if k := due - done; k > 0 {
			if _, err := st.RunCreateBatch(ctx, store.RunCreateBatchParams{Job: jobName, Count: k, Now: time.Now()}); err != nil {
				return err
			}
			c.runsQueued()
			done = due
		}
		time.Sleep(tick)
	}
	return nil
}

type measured struct {
	first, last time.Time // the first run's end, the last receipt
	latency     []time.Duration
	again       int
}

// measure reads every record with its run's end, once the records are final, and
// checks that each was delivered at its first attempt and received.
func measure(ctx context.Context, st store.Store, rc *receipts, n int) (measured, error) {
	db := st.(interface{ SQL() *sql.DB }).SQL()
	var m measured
	deadline := time.Now().Add(time.Minute)
	for {
		var open int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending')`).Scan(&open); err != nil {
			return m, err
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%d deliveries not final a minute after every key was received", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, err := db.QueryContext(ctx, `SELECT d.id, d.state, d.attempts, r.finished_at FROM deliveries d JOIN runs r ON r.id = d.run_id`)
	if err != nil {
		return m, err
	}
	defer rows.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	bad := map[string]int{}
	for rows.Next() {
		var id, attempts, finished int64
		var state string
		if err := rows.Scan(&id, &state, &attempts, &finished); err != nil {
			return m, err
		}
		at, ok := rc.first[store.DeliveryKey(id)]
		if state != string(store.DeliveryDelivered) || attempts != 1 || !ok {
			bad[fmt.Sprintf("%s/attempts %d/received %v", state, attempts, ok)]++
			continue
		}
		end := time.UnixMicro(finished)
		if m.first.IsZero() || end.Before(m.first) {
			m.first = end
		}
		if at.After(m.last) {
			m.last = at
		}
		m.latency = append(m.latency, at.Sub(end))
	}
	if err := rows.Err(); err != nil {
		return m, err
	}
	if len(bad) > 0 || len(m.latency) != n || rc.failed > 0 {
		return m, fmt.Errorf("%d of %d records delivered at the first attempt and received; others: %v; %d requests not verified", len(m.latency), n, bad, rc.failed)
	}
	m.again = rc.again
	return m, nil
}

// cluster is the in-process nodes of one configuration.
type cluster struct {
	nodes  []*node.Node
	stores []store.Store
}

// startCluster starts k nodes on db (priorities 0, 1, …) with the SMTP settings and
// waits until one is primary and every node has reported in.
func startCluster(ctx context.Context, db, dir string, k int, smtpCfg config.SMTP, log *slog.Logger) (_ *cluster, err error) {
	c := &cluster{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	for i := range k {
		cfg := config.Default()
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.NodeID)
		cfg.DB, cfg.Listen, cfg.Priority = db, "127.0.0.1:0", i
		if smtpCfg.Host != "" {
			cfg.SMTP = smtpCfg
		}
		if err := cfg.Finish(); err != nil {
			return nil, err
		}
		st, err := storesqlite.Open(ctx, db)
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
		nodes, err := c.stores[0].NodeList(ctx)
		primary := 0
		for _, nd := range c.nodes {
			if nd.Mode() == node.ModePrimary {
				primary++
			}
		}
		if err == nil && len(nodes) == k && primary == 1 {
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

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
