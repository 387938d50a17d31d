// Package sitesync keeps a disaster-recovery cluster's configuration in step with the
// production cluster's, one way and in order: the production primary's sender streams
// the change log (store.Sync) from the cursor the target acknowledged, in batches, to the
// target's API; the target applies each batch and moves its cursor in one transaction.
// A full sync replaces the target's whole configuration with a snapshot at sequence S in
// one transaction; streaming then resumes from S.
//
// Invariants:
//   - The target's cursor moves only in the transaction that applies the changes it
//     passes (store.SyncApply is a compare-and-set from the batch's From), so a crash or a
//     lost answer on either side resends a batch that is then a no-op, never a gap.
//   - A target takes changes from one source, recorded by its fingerprint, until it is
//     promoted; a cluster with a [sitesync] target refuses to be a target (no loops).
//   - Address substitution and the pause of synced jobs happen at the target, when a
//     change is applied; what was rewritten is recorded with the target's own change.
//
// The sender's states (its state is stored in the source's repository, so the next
// primary resumes it):
//
//	           batch ok                      batch failed
//	streaming ─────────► streaming  streaming ──────────► failing (sync.failed)
//	failing   ─────────► streaming (sync.succeeded)
//	failing   ── max_failures consecutive ──► paused (sync.paused)
//	paused    ── tandem sync resume ────────► streaming (sync.resumed)
//
// Each event is written in the transaction that stores the state it reports
// (store.Sync's SyncSourceSet, SyncSourcePause): a failure count the sender could not
// record raises no sync.failed. The sender keeps counting such failures itself, onto the
// state it read, so its backoff grows and max_failures pauses it all the same. sync.full
// goes with the cursor it moves; a full sync that leaves the recorded cursor where it was
// changed nothing here, and its event is appended on its own.
package sitesync
