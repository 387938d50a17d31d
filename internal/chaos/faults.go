package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/pgtest"
)

// clockOffLine is what a node logs when its clock is off the repository's.
var clockOffLine = regexp.MustCompile(`clock is .* off the repository's`)

// ttl is the lease TTL of the nodes the soak runs (the default): faults last about it.
const leaseTTL = config.LeaseTTLDefault

// faultKinds lists the kinds a soak can inject on an engine, with their weights.
func faultKinds(postgres, skew bool) []weighted {
	ks := []weighted{{history.FaultKill, 2}, {history.FaultKillProcess, 2}, {history.FaultTerm, 1}, {history.FaultNodeStop, 1},
		{history.FaultFreeze, 3}, {history.FaultPeerPartition, 2}, {history.FaultPeerReset, 1}, {history.FaultPeerLatency, 1}}
	if skew {
		ks = append(ks, weighted{history.FaultSkew, 1})
	}
	if postgres {
		ks = append(ks, weighted{history.FaultDBPartition, 3}, weighted{history.FaultDBReset, 2}, weighted{history.FaultDBLatency, 1}, weighted{history.FaultPGRestart, 1})
	}
	return ks
}

type weighted struct {
	kind   string
	weight int
}

func pick(rng *rand.Rand, ks []weighted) string {
	total := 0
	for _, k := range ks {
		total += k.weight
	}
	n := rng.IntN(total)
	for _, k := range ks {
		if n < k.weight {
			return k.kind
		}
		n -= k.weight
	}
	return ks[len(ks)-1].kind
}

// around returns a duration between lo and hi times the lease TTL.
func around(rng *rand.Rand, lo, hi float64) time.Duration {
	return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(leaseTTL))
}

// injector applies faults to a cluster; all its randomness comes from rng.
type injector struct {
	c   *Cluster
	pg  *pgtest.Server // nil on SQLite
	rng *rand.Rand
	out func(format string, args ...any)
	// freezesInWrite counts SQLite freezes that landed inside a write transaction and
	// were continued at once (docs/failover.md, "Limits to know").
	freezesInWrite int
}

// inject applies one fault of the kind and heals it, and returns what it did.
func (in *injector) inject(ctx context.Context, kind string, n *Node) (history.Fault, error) {
	rec := history.Fault{Kind: kind, Node: n.ID(), Start: time.Now()}
	err := in.apply(ctx, &rec, n)
	rec.End = time.Now()
	if kind == history.FaultPGRestart {
		rec.Node = ""
	}
	return rec, err
}

// sleep waits d or until ctx ends; the fault is healed either way.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (in *injector) apply(ctx context.Context, rec *history.Fault, n *Node) error {
	rng := in.rng
	switch rec.Kind {
	case history.FaultKill, history.FaultKillProcess, history.FaultTerm, history.FaultNodeStop, history.FaultSkew:
		down := around(rng, 0, 1)
		skew := n.ClockSkew()
		if rec.Kind == history.FaultSkew {
			if skew != 0 {
				skew = 0
			} else {
				skew = time.Duration(1+rng.IntN(5)) * time.Minute
				if rng.IntN(2) == 0 {
					skew = -skew
				}
			}
		}
		switch rec.Kind {
		case history.FaultKill:
			rec.Detail = fmt.Sprintf("kill -9, restart after %s", down.Round(time.Millisecond))
			if err := n.Kill(); err != nil {
				return err
			}
		case history.FaultKillProcess:
			rec.Detail = fmt.Sprintf("kill -9 of the node's process alone, restart after %s", down.Round(time.Millisecond))
			if err := n.KillProcess(); err != nil {
				return err
			}
		case history.FaultNodeStop:
			via := in.other(n)
			rec.Detail = fmt.Sprintf("node stop through %s, restart after %s", via.ID(), down.Round(time.Millisecond))
			stop, cancel := context.WithTimeout(ctx, ShutdownGrace+20*time.Second)
			err := n.StopThrough(stop, via)
			cancel()
			if err != nil {
				return err
			}
		default:
			rec.Detail = fmt.Sprintf("SIGTERM, restart after %s", down.Round(time.Millisecond))
			stop, cancel := context.WithTimeout(ctx, ShutdownGrace+20*time.Second)
			err := n.Term(stop)
			cancel()
			if err != nil && !strings.Contains(err.Error(), "exit status") {
				return err
			}
		}
		if rec.Kind == history.FaultSkew {
			rec.Detail += fmt.Sprintf(" with --clock-skew %s", skew)
		}
		n.SetClockSkew(skew)
		sleep(ctx, down)
		mark := in.c.Mark()
		if err := n.Restart(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		if rec.Kind == history.FaultSkew && skew != 0 {
			// The node says so when it finds its clock off the repository's.
			l, err := in.c.WaitLog(withTimeout(ctx, 5*time.Second), mark, LogMatch{Node: n.ID(), Pattern: clockOffLine})
			if err != nil {
				rec.Detail += " (the node did not report its clock off)"
			} else {
				rec.Detail += fmt.Sprintf(" (node: %q)", l.Msg)
			}
		}
		return nil
	case history.FaultFreeze:
		d := around(rng, 0.5, 2)
		rec.Detail = fmt.Sprintf("SIGSTOP for %s", d.Round(time.Millisecond))
		for tries := 1; ; tries++ {
			if err := n.Freeze(); err != nil {
				return err
			}
			inWrite, err := n.HoldsSQLiteWriteLock()
			if err != nil || !inWrite {
				break
			}
			// Frozen inside a SQLite write transaction: nobody can write until it runs
			// again, a documented limit and not what this fault is about. Continue it at
			// once and freeze it again at another moment.
			in.freezesInWrite++
			if err := n.Thaw(); err != nil {
				return err
			}
			if tries == 20 {
				rec.Detail += " (not applied: every freeze landed inside a SQLite write transaction)"
				return nil
			}
			sleep(ctx, time.Duration(10+rng.IntN(90))*time.Millisecond)
		}
		sleep(ctx, d)
		return n.Thaw()
	case history.FaultPeerPartition, history.FaultDBPartition:
		p := n.PeerProxy()
		if rec.Kind == history.FaultDBPartition {
			p = n.DBProxy()
		}
		f := []Fault{Blackhole, {Hold: [2]bool{Up: true}}, {Hold: [2]bool{Down: true}}}[rng.IntN(3)]
		d := around(rng, 0.5, 2.5)
		rec.Detail = fmt.Sprintf("%s for %s", f, d.Round(time.Millisecond))
		p.Set(f)
		sleep(ctx, d)
		p.Heal()
	case history.FaultPeerReset, history.FaultDBReset:
		p := n.PeerProxy()
		if rec.Kind == history.FaultDBReset {
			p = n.DBProxy()
		}
		d := around(rng, 0.2, 1.5)
		p.Set(Fault{Refuse: true})
		k := p.Reset()
		rec.Detail = fmt.Sprintf("reset %d connections, refuse new ones for %s", k, d.Round(time.Millisecond))
		sleep(ctx, d)
		p.Heal()
	case history.FaultPeerLatency, history.FaultDBLatency:
		p := n.PeerProxy()
		if rec.Kind == history.FaultDBLatency {
			p = n.DBProxy()
		}
		var f Fault
		lat := time.Duration(20+rng.IntN(400)) * time.Millisecond
		switch rng.IntN(3) {
		case 0:
			f.Latency[Up] = lat
		case 1:
			f.Latency[Down] = lat
		default:
			f.Latency = [2]time.Duration{lat / 2, lat / 2}
		}
		d := around(rng, 1, 3)
		rec.Detail = fmt.Sprintf("%s for %s", f, d.Round(time.Millisecond))
		p.Set(f)
		sleep(ctx, d)
		p.Heal()
	case history.FaultPGRestart:
		o := pgtest.RestartOptions{Down: around(rng, 0, 1), Immediate: rng.IntN(2) == 0}
		mode := "fast"
		if o.Immediate {
			mode = "immediate"
		}
		rec.Detail = fmt.Sprintf("%s shutdown, down for %s", mode, o.Down.Round(time.Millisecond))
		return in.pg.Restart(ctx, o)
	default:
		return fmt.Errorf("inject fault: unknown kind %q", rec.Kind)
	}
	return nil
}

// other is a running node other than n to send requests through (n itself if none).
func (in *injector) other(n *Node) *Node {
	for _, o := range in.c.Nodes() {
		if o != n && o.Running() && !o.Frozen() {
			return o
		}
	}
	return n
}

// healAll undoes whatever a fault interrupted by the end of the soak left: frozen nodes
// continue, proxies pass, stopped nodes start again.
func (in *injector) healAll(ctx context.Context) error {
	var errs []error
	for _, n := range in.c.Nodes() {
		if n.Frozen() {
			errs = append(errs, n.Thaw())
		}
		for _, p := range []*Proxy{n.PeerProxy(), n.DBProxy()} {
			if p != nil {
				p.Heal()
			}
		}
	}
	for _, n := range in.c.Nodes() {
		if !n.Running() {
			errs = append(errs, n.Restart(ctx))
		}
	}
	return errors.Join(errs...)
}

// kindsIn counts faults by kind, e.g. "freeze=12 kill=9".
func kindsIn(fs []history.Fault) string {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	kinds := make([]string, 0, len(n))
	for k := range n {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}
