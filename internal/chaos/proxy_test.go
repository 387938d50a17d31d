package chaos

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// newTestProxy starts a proxy to an echo server; cleanup closes it and checks that no
// goroutine of the test is left behind.
func newTestProxy(t *testing.T) *Proxy {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	target := echoServer(t)
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	return p
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and reads the echo within limit; it returns how long it took.
func (c *lineConn) roundTrip(line string, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := c.SetDeadline(t0.Add(limit)); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return 0, err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return time.Since(t0), err
	}
	if strings.TrimSpace(got) != line {
		return time.Since(t0), errors.New("echo " + got + " for " + line)
	}
	return time.Since(t0), nil
}

// dialAndTrip connects and makes one round trip; a reset may come as early as the
// connect itself.
func dialAndTrip(p *Proxy) error {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = (&lineConn{Conn: c, r: bufio.NewReader(c)}).roundTrip("x", 5*time.Second)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyPasses(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	for _, l := range []string{"one", "two", strings.Repeat("x", 100_000)} {
		if _, err := c.roundTrip(l, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if p.Conns() != 1 {
		t.Errorf("Conns = %d, want 1", p.Conns())
	}
}

// A hold keeps the connection open and delivers nothing; what was sent arrives in order
// once it heals, as after a partition that TCP outlived.
func TestProxyHoldKeepsSocketsAndDeliversAfterHeal(t *testing.T) {
	for _, f := range []Fault{Blackhole, {Hold: [2]bool{Up: true}}, {Hold: [2]bool{Down: true}}} {
		t.Run(f.String(), func(t *testing.T) {
			p := newTestProxy(t)
			c := dial(t, p)
			if _, err := c.roundTrip("before", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			p.Set(f)
			if _, err := c.roundTrip("during", 300*time.Millisecond); !isTimeout(err) {
				t.Fatalf("round trip through %s: %v, want a timeout", f, err)
			}
			// A connection opened during the partition is accepted and held too.
			c2 := dial(t, p)
			if _, err := c2.roundTrip("new", 200*time.Millisecond); !isTimeout(err) {
				t.Fatalf("new connection through %s: %v, want a timeout", f, err)
			}
			p.Heal()
			if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if got, err := c.r.ReadString('\n'); err != nil || got != "during\n" {
				t.Fatalf("after heal read %q, %v; want the held line", got, err)
			}
			if _, err := c.roundTrip("after", 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestProxyLatencyPerDirection(t *testing.T) {
	const lat = 150 * time.Millisecond
	for _, f := range []Fault{{Latency: [2]time.Duration{Up: lat}}, {Latency: [2]time.Duration{Down: lat}}, {Latency: [2]time.Duration{lat, lat}}} {
		t.Run(f.String(), func(t *testing.T) {
			p := newTestProxy(t)
			c := dial(t, p)
			p.Set(f)
			want := f.Latency[Up] + f.Latency[Down]
			took, err := c.roundTrip("slow", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if took < want {
				t.Errorf("round trip took %s, want at least %s", took, want)
			}
			p.Heal()
			if took, err := c.roundTrip("fast", 5*time.Second); err != nil || took >= lat {
				t.Errorf("healed round trip took %s (%v), want under %s", took, err, lat)
			}
		})
	}
}

func TestProxyRefuseAndReset(t *testing.T) {
	p := newTestProxy(t)
	old := dial(t, p)
	if _, err := old.roundTrip("hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Set(Fault{Refuse: true})
	if err := dialAndTrip(p); err == nil || isTimeout(err) {
		t.Errorf("new connection while refusing: %v, want it reset", err)
	}
	if _, err := old.roundTrip("still", 5*time.Second); err != nil {
		t.Errorf("open connection while refusing new ones: %v", err)
	}
	if n := p.Reset(); n != 1 {
		t.Errorf("Reset reset %d connections, want 1", n)
	}
	if _, err := old.roundTrip("gone", 5*time.Second); err == nil || isTimeout(err) {
		t.Errorf("after Reset: %v, want a connection error", err)
	}
	p.Heal()
	if _, err := dial(t, p).roundTrip("again", 5*time.Second); err != nil {
		t.Errorf("after heal: %v", err)
	}
}

// Close ends held connections too, and leaves no goroutine behind (newTestProxy checks).
func TestProxyCloseWhileHeld(t *testing.T) {
	p := newTestProxy(t)
	c := dial(t, p)
	p.Set(Blackhole)
	if _, err := io.WriteString(c, strings.Repeat("y", 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Errorf("read after Close: %v, want the connection ended", err)
	}
}

func TestProxySetTarget(t *testing.T) {
	p := newTestProxy(t)
	p.SetTarget("")
	if err := dialAndTrip(p); err == nil || isTimeout(err) {
		t.Errorf("without a target: %v, want the connection reset", err)
	}
	p.SetTarget(echoServer(t))
	if _, err := dial(t, p).roundTrip("y", 5*time.Second); err != nil {
		t.Error(err)
	}
}
