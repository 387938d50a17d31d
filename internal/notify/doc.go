// Package notify owns event rules: a rule file's [[rule]] tables (Parse), their
// conditions compiled and type-checked with expr-lang against the documented event
// schema (Schema), their key/subject/body templates, and the primary's Notifier.
//
// The Notifier runs under the primary's term and follows the event log:
//
//	cursor (stored) ──► events after it, oldest first (a batch)
//	                     │ each judged by every rule: type in on, after the rule,
//	                     │ not the rule's own delivery failure, when holds
//	                     ▼
//	          notice per (rule, event): sent (delivery records), suppressed as a
//	          repeat of (rule, key) within repeat, or recorded (no channel);
//	          digests of the windows that passed
//	                     │ one transaction, fenced by the lease epoch,
//	                     ▼ cursor moved by compare-and-set
//	          store.Rules.NotifyAdvance ──► deliverers of every node send the records
//
// Invariant: every event after a rule was created is judged by it exactly once,
// whichever node is primary, because the judgement and the cursor move commit together
// under the epoch, and event ids commit in increasing order (store.Store.EventAppend).
// Sending is at-least-once with one idempotency key per record (internal/deliver).
//
// The Notifier also raises run.late and run.long for running runs (watch.go), once per
// run by a dedup key.
package notify
