package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Direction is one way of a proxied connection.
type Direction int

const (
	// Up is from the client (the side that connected to the proxy) to the target.
	Up Direction = iota
	// Down is from the target back to the client.
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Fault is how a Proxy treats traffic. The zero Fault passes everything.
type Fault struct {
	// Hold stops forwarding in a direction: bytes are read but held until the fault is
	// lifted, sockets stay open, and the sender's writes block once the buffers fill.
	// That is what a network partition does to a TCP connection that outlives it: nothing
	// arrives, nothing is refused, and what was sent arrives once it heals.
	Hold [2]bool
	// Latency delays each chunk by this much in a direction, in order.
	Latency [2]time.Duration
	// Refuse resets every new connection at once; connections already open are kept.
	Refuse bool
}

// String describes the fault, e.g. "hold up+down", "latency down 120ms", "pass".
func (f Fault) String() string {
	var parts []string
	switch {
	case f.Hold[Up] && f.Hold[Down]:
		parts = append(parts, "hold up+down")
	case f.Hold[Up]:
		parts = append(parts, "hold up")
	case f.Hold[Down]:
		parts = append(parts, "hold down")
	}
	for _, d := range []Direction{Up, Down} {
		if f.Latency[d] > 0 {
			parts = append(parts, fmt.Sprintf("latency %s %s", d, f.Latency[d]))
		}
	}
	if f.Refuse {
		parts = append(parts, "refuse new")
	}
	if len(parts) == 0 {
		return "pass"
	}
	s := parts[0]
	for _, p := range parts[1:] {
		s += ", " + p
	}
	return s
}

// Blackhole is a Fault that holds both directions: a full partition.
var Blackhole = Fault{Hold: [2]bool{true, true}}

// Proxy forwards TCP connections from its own address to a target and injects faults
// into them, switchable at any time: hold (a partition that keeps sockets open), added
// latency, either per direction, refusal of new connections, and a reset of every open
// connection. Its methods are safe for concurrent use.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string
	fault   Fault
	changed chan struct{} // closed and replaced whenever fault changes
	conns   map[*proxyConn]struct{}
	closed  bool
	wg      sync.WaitGroup // every goroutine of the proxy
}

// NewProxy listens on 127.0.0.1 on a free port and forwards to target (host:port); an
// empty target is set later with SetTarget, and connections made before are reset.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, changed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is where new connections go.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget changes where new connections go; open ones keep their target.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Set applies a fault from now on, to open connections and new ones. Bytes held by an
// earlier Hold are forwarded once their direction is no longer held.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	close(p.changed)
	p.changed = make(chan struct{})
}

// Heal passes everything again: Set(Fault{}).
func (p *Proxy) Heal() { p.Set(Fault{}) }

// Fault is the fault in force.
func (p *Proxy) Fault() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Reset ends every open connection with a TCP reset on both sides, as a middlebox that
// lost its state or a rebooted peer would. New connections are not affected (see
// Fault.Refuse). It returns how many connections it reset.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
	return len(conns)
}

// Conns is how many connections are open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, resets every open connection and returns once every goroutine
// of the proxy has ended. Safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	var err error
	if !already {
		err = p.ln.Close()
	}
	p.Reset()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close proxy: %w", err)
	}
	return nil
}

// state returns the fault in force and a channel closed when it changes.
func (p *Proxy) state() (Fault, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault, p.changed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		p.mu.Lock()
		refuse, target, closed := p.fault.Refuse, p.target, p.closed
		if !refuse && !closed && target != "" {
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if refuse || closed || target == "" {
			resetConn(client)
			continue
		}
		go p.serve(client, target)
	}
}

// dialTimeout bounds the proxy's own connection to its target.
const dialTimeout = 5 * time.Second

func (p *Proxy) serve(client net.Conn, target string) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", target, dialTimeout)
	if err != nil {
		// The client sees what it would have seen connecting to a target that is down.
		resetConn(client)
		return
	}
	c := &proxyConn{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		resetConn(client)
		resetConn(server)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(c, Up, client, server) }()
	go func() { defer pumps.Done(); p.pump(c, Down, server, client) }()
	pumps.Wait()
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// chunk is a read that waits for its turn to be written.
type chunk struct {
	data []byte
	at   time.Time
}

// pump copies one direction of a connection through the proxy's faults. The reader
// goroutine keeps reading while the writer waits (held, or delaying), so that a delay
// applies to each chunk from when it arrived, not cumulatively; the queue between them
// is bounded, so a held direction applies back-pressure to its sender.
func (p *Proxy) pump(c *proxyConn, dir Direction, src, dst net.Conn) {
	queue := make(chan chunk, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case queue <- chunk{data: buf[:n], at: time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		// The reader ends when src fails, which the other pump or a reset causes.
		<-readDone
	}()
	for ch := range queue {
		if !p.gate(c, dir, ch.at) {
			c.close()
			return
		}
		if _, err := dst.Write(ch.data); err != nil {
			c.close()
			return
		}
	}
	// src ended (EOF or error): pass the half-close on, as TCP would.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// gate waits until a chunk read at `at` may be written in direction dir: while the
// direction is held, and until its latency has passed. It returns false if the
// connection ended meanwhile.
func (p *Proxy) gate(c *proxyConn, dir Direction, at time.Time) bool {
	for {
		f, changed := p.state()
		if f.Hold[dir] {
			select {
			case <-changed:
				continue
			case <-c.done:
				return false
			}
		}
		wait := time.Until(at.Add(f.Latency[dir]))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			return true
		case <-changed:
			t.Stop() // the fault changed: look again
		case <-c.done:
			t.Stop()
			return false
		}
	}
}

// proxyConn is one client connection and the proxy's connection to the target.
type proxyConn struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

// close closes both sides normally (FIN).
func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
	})
}

// reset closes both sides with a TCP reset.
func (c *proxyConn) reset() {
	c.once.Do(func() {
		close(c.done)
		resetConn(c.client)
		resetConn(c.server)
	})
}

// resetConn closes a connection with RST instead of FIN: linger 0 discards unsent data.
func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

var _ io.Closer = (*Proxy)(nil)
