// Package dispatch gives queued runs to nodes. It runs only on the primary; every
// assignment is fenced by the primary's lease epoch and carries a fresh attempt token.
//
// A run's life as the dispatcher sees it:
//
//	queued ──(assign: node with free capacity and the job's tags; epoch checked)──▶ running
//	running ──(the node's worker begins it, writing nothing; reports with the token)──▶ final,
//	        or queued again (retry; a lost node; handed back by its node, not begun)
//
// The assignment is the attempt's start (one write, not two): the worker executes what it
// is given. The attempt is spent from the assignment on, except when the node's own
// process hands back a run it never began (a graceful stop).
//
// Invariants: a run is assigned only while queued, so two dispatchers cannot both give it
// away; a job with overlap "queue" has at most one run assigned or running; a node is
// never given more runs than its free capacity as last known.
package dispatch
