package node_test

import (
	"io"
	"net"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/testutil"
)

// proxy forwards TCP connections to a target and can cut them all and refuse new ones,
// as a database that went away would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			}()
		}
	}
}

// setDown cuts every connection and refuses new ones (true), or lets them through again.
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.setDown(true)
	p.wg.Wait()
}

// A node survives its PostgreSQL repository going away and coming back: it steps down
// while it cannot renew its lease, resumes by itself, and the schedule's occurrences are
// each accounted for once (fired, or recorded as missed) across the outage.
func TestPostgresGoesAwayAndComesBack(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	h := start(t, func(c *config.Config) { c.DB = u.String() })
	h.apply(`
name = "tick"
schedule = ["@every 1s"]
misfire = "run-all"
[command]
argv = ["true"]
`)
	h.waitRuns("tick", 30*time.Second, "two succeeded runs", func(r []api.Run) bool { return count(r, "succeeded") >= 2 })
	px.setDown(true)
	testutil.Wait(t, 20*time.Second, "the node to step down", func() bool { return h.node.Mode() == "standby" })
	px.setDown(false)
	testutil.Wait(t, 30*time.Second, "the node to be primary again", func() bool { return h.node.Mode() == "primary" })
	before := 0
	if runs, err := h.c.RunList(ctx(t), clientParams("tick")); err == nil {
		before = count(runs, "succeeded")
	}
	runs := h.waitRuns("tick", 30*time.Second, "runs after the outage", func(r []api.Run) bool { return count(r, "succeeded") >= before+2 })
	checkOnce(t, runs)
}

// checkOnce asserts that no scheduled second is covered twice and none is skipped
// between the first and the last one recorded.
func checkOnce(t *testing.T, runs []api.Run) {
	t.Helper()
	var times []time.Time
	seen := map[time.Time]bool{}
	for _, r := range runs {
		first, last, ok := history.Span(r)
		if !ok {
			continue
		}
		for at := first; !at.After(last); at = at.Add(time.Second) {
			if seen[at] {
				t.Fatalf("%s fired twice", at)
			}
			seen[at] = true
			times = append(times, at)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if times[i].Sub(times[i-1]) != time.Second {
			t.Fatalf("occurrences between %s and %s lost", times[i-1], times[i])
		}
	}
}
