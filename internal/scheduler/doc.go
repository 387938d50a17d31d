// Package scheduler fires the due occurrences of every schedule. It runs only on the
// primary, and every write it makes is fenced by the primary's lease epoch.
//
// State machine of one schedule, as persisted in the repository:
//
//	next_fire_at = NULL ──(init: first occurrence after now)──▶ next_fire_at = T
//	next_fire_at = T ──(T due: plan occurrences T..now, CAS T → T')──▶ next_fire_at = T'
//	next_fire_at = T ──(no occurrence left)──▶ done
//
// Invariants:
//   - The scheduler never trusts memory over the repository: it plans from the persisted
//     next_fire_at and commits the plan with a compare-and-set on it, in the same
//     transaction that inserts the occurrences. A time is fired exactly once, even across
//     restarts, failovers and racing schedulers.
//   - Every occurrence from T up to T' is accounted for: fired as a run, recorded as missed
//     (misfire policy), or recorded as skipped (blackout), never silently dropped.
//   - Firing is timer-driven: the scheduler sleeps until the earliest next_fire_at, not on
//     a coarse polling tick; a change of configuration wakes it.
//   - Memory holds a window, not the whole set: the queue holds exactly the active
//     schedules whose (next_fire_at, id) is at or before a cursor, read from the
//     repository a page at a time in that order while the cursor is within the horizon
//     (30s ahead) of now. A schedule fired beyond the cursor leaves memory and is read
//     again when its time comes within reach. So a new primary reads the earliest page
//     and fires at once, however many schedules exist, and memory does not grow with
//     them. A change of configuration or a compare-and-set that did not apply forgets the
//     window and reads it again.
//   - Schedules without a next_fire_at are initialised a page at a time between firings.
package scheduler
