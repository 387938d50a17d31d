// Package lease keeps the primary lease: which node fires schedules and dispatches runs.
//
// The repository decides who leads; a process only bounds how long it trusts its last
// successful renewal. State machine of one node:
//
//	standby ──(acquire succeeds: lease free or expired; epoch+1)──▶ primary
//	primary ──(renew succeeds)──▶ primary, trusted until renewStart + TTL − margin
//	primary ──(renew fenced: another holder or epoch)──▶ standby
//	primary ──(trust deadline passes without a successful renew)──▶ standby
//	primary ──(stop)──▶ resign (expire the lease, keep the epoch) ──▶ stopped
//	primary ──(handover to S)──▶ resign naming S ──▶ standby; for one TTL only S may
//	        acquire, then the lease is free to every standby (the old holder too)
//	standby ──(holder's liveness lock free: its process died)──▶ acquire at once
//	primary ──(resign fenced: the lease was taken over meanwhile)──▶ standby
//
// The acquire that begins a term writes Params.Event (primary.changed, slot.taken) in
// its transaction, and a resignation Params.Resigned (primary.stepped_down) in its
// own: a refused acquire or a fenced resignation records nothing. A term that ends
// without a write of its holder (a renewal failed or was fenced) has nothing to record
// its end with; Term.EndRecorded tells Deposed which it was.
//
// Among standbys that see a free lease, the one with the best rank (priority, then id)
// tries first; each rank waits four polls more (200ms at the default renewal), so a
// best standby that is alive but busy still comes first.
//
// Invariants:
//   - Expiry is judged on the repository's side (a single clock for every node of one
//     host's SQLite; the database clock on PostgreSQL), never by comparing a node's clock
//     with a stored timestamp.
//   - Trust is measured on the holder's monotonic clock from the START of the last
//     successful renewal, so a slow renewal that succeeds late never extends trust
//     beyond what the repository granted.
//   - The epoch is the fencing token: every role-dependent write carries it, and the
//     repository refuses writes from any epoch but the current one. Trust bounds how long
//     a deposed primary keeps trying; the epoch makes its tries harmless.
package lease
