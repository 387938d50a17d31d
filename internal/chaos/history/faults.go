package history

import (
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// deathMargin is how long after a kill a killed node's command may still be seen alive:
// the kernel delivers the parent-death signal as the node's process ends, so anything
// later is a command that outlived its node.
const deathMargin = 500 * time.Millisecond

// checkFaults judges a watched job's history against the faults injected while it ran:
//
//	dead-overlap: an attempt found an earlier attempt of its own run alive, and that earlier
//	    attempt's node had been killed (kill, kill-process) after the attempt began and
//	    more than deathMargin before: a dead node's command outlived it and ran beside
//	    its successor.
//	drain: an execution in flight on a node when a graceful stop of that node began
//	    (term, node-stop: it began less than Duration earlier) was followed by another
//	    attempt of its run during the stop: the stopping node lost a run it was
//	    finishing.
func checkFaults(h Job, byID map[int64]wire.Run, execs map[int64][]Exec, add func(string, string, []wire.Run)) {
	around := func(id int64) []wire.Run {
		if r, ok := byID[id]; ok {
			return []wire.Run{r}
		}
		return nil
	}
	for _, ov := range h.Overlaps {
		var earlier *Exec
		for i, e := range execs[ov.Run] {
			if e.Attempt == ov.Alive {
				earlier = &execs[ov.Run][i]
			}
		}
		if earlier == nil {
			continue
		}
		for _, f := range h.Faults {
			killed := f.Kind == FaultKill || f.Kind == FaultKillProcess
			if killed && f.Node == earlier.Node && f.Start.After(earlier.At) && ov.At.Sub(f.Start) > deathMargin {
				add("dead-overlap", fmt.Sprintf("run %d: attempt %d began on %s at %s and found attempt %d (begun on %s at %s) alive, though %s was killed at %s (%s)",
					ov.Run, ov.Attempt, ov.Node, ov.At.Format("15:04:05.000"), ov.Alive, earlier.Node, earlier.At.Format("15:04:05.000"),
					f.Node, f.Start.Format("15:04:05.000"), f), around(ov.Run))
				break
			}
		}
	}
	if h.Duration <= 0 {
		return
	}
	for _, f := range h.Faults {
		if f.Kind != FaultTerm && f.Kind != FaultNodeStop {
			continue
		}
		for id, es := range execs {
			for _, e := range es {
				if e.Node != f.Node || !e.At.Before(f.Start) || f.Start.Sub(e.At) >= h.Duration {
					continue
				}
				for _, later := range es {
					if later.Attempt > e.Attempt && !later.At.Before(f.Start) && !later.At.After(f.End) {
						add("drain", fmt.Sprintf("run %d: attempt %d was running on %s when it began to stop (%s), and attempt %d began on %s at %s during the stop",
							id, e.Attempt, e.Node, f, later.Attempt, later.Node, later.At.Format("15:04:05.000")), around(id))
					}
				}
			}
		}
	}
}

// Fault is one injected fault: what, on which node, and from when until it healed.
type Fault struct {
	N      int // 1, 2, … in the order injected
	Kind   string
	Node   string // "" for a fault of the database server
	Detail string
	Start  time.Time
	End    time.Time // when it was healed
}

func (f Fault) String() string {
	who := ""
	if f.Node != "" {
		who = " " + f.Node
	}
	return fmt.Sprintf("fault %d %s..%s %s%s: %s", f.N, f.Start.Format("15:04:05.000"), f.End.Format("15:04:05.000"), f.Kind, who, f.Detail)
}

// Fault kinds of the soak. Each heals itself before the next begins.
const (
	FaultKill          = "kill"           // kill -9 of a node's process tree, restart after a while
	FaultKillProcess   = "kill-process"   // kill -9 of a node's process alone: its commands must die with it
	FaultTerm          = "term"           // SIGTERM (graceful stop), restart after a while
	FaultNodeStop      = "node-stop"      // `tandem node stop` through another node, restart after a while
	FaultFreeze        = "freeze"         // SIGSTOP for about the lease TTL, then SIGCONT
	FaultSkew          = "skew"           // restart a node with its wall clock minutes off (or back)
	FaultPeerPartition = "peer-partition" // the node's inbound peer traffic held, one way or both
	FaultPeerReset     = "peer-reset"     // the node's peer connections reset and new ones refused
	FaultPeerLatency   = "peer-latency"   // latency added to the node's peer traffic
	FaultDBPartition   = "db-partition"   // the node's PostgreSQL traffic held, one way or both
	FaultDBReset       = "db-reset"       // the node's PostgreSQL connections reset, new ones refused
	FaultDBLatency     = "db-latency"     // latency added to the node's PostgreSQL traffic
	FaultPGRestart     = "pg-restart"     // PostgreSQL restarted (fast or immediate shutdown)
)
