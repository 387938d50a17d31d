// Package dispatch gives queued runs to nodes. It runs only on the primary; every
// assignment is fenced by the primary's lease epoch and carries a fresh attempt token.
//
// A run's life as the dispatcher sees it:
//
//	queued ──(assign: node with free capacity and the job's tags; epoch checked)──▶ assigned
//	assigned ──(worker starts it with the token)──▶ running ──▶ final, or queued again (retry)
//
// Invariants: a run is assigned only while queued, so two dispatchers cannot both give it
// away; a job with overlap "queue" has at most one run assigned or running; a node is
// never given more runs than its free capacity as last known.
package dispatch
