// Package node composes one running tandem node: the repository, the lease keeper, the
// worker, heartbeats, the API, and, while this node is primary and not suspended, the
// scheduler, the dispatcher and the reaper of lost nodes. It composes; it does not own:
// membership and the status table live in internal/cluster, output files in
// internal/output, node-to-node calls in internal/peer, the term of the role in
// internal/lease. It owns every goroutine it starts and waits for them on Stop. Start
// and Stop are safe to call twice. Tests embed nodes in-process through New, Start and
// Stop.
//
// # Modes
//
// A node's mode is derived in one place (modeLocked) from four facts: whether it is
// stopping, whether it holds a term of the primary lease, whether the primary role is
// suspended, and whether it is a worker-only or held node:
//
//	                 start
//	                   │
//	      worker ◄─────┼─────► held ◄──── hold (standby) ────┐
//	   (cfg.Worker)    │         │ release                    │
//	                   ▼         ▼                            │
//	                standby ─────────────────────────────────►┘
//	                 │   ▲
//	 term begins     │   │ term ends (renew failed, taken over,
//	 (lease.Term)    ▼   │ handed over, stopping)
//	                primary ◄──── resume ────┐
//	                   │                     │
//	                   └──── suspend ───► suspended (keeps the term; fires and
//	                                                 dispatches nothing)
//
//	any mode ── stop ──► draining (heartbeats go on until the last run ends) ──► gone
//
// Every service of the primary runs under its lease.Term: the scheduler, the dispatcher,
// the statistics refresher, the reaper and the notifier stop when the term's context
// ends, and the lease keeper never waits for them. The next term starts its services
// only once the previous term's have ended.
package node
