package store

import (
	"context"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Schedules is the scheduler's concern: the active schedules in the order they fire,
// and firing their occurrences exactly once. OccurrenceFire is fenced by the epoch of
// the scheduler's lease (ErrFenced) and advances each schedule by compare-and-set.
type Schedules interface {
	// ScheduleListDue returns active schedules by next fire time, one page at a time, so
	// that a scheduler keeps only what is due soon in memory and fires the earliest first.
	ScheduleListDue(ctx context.Context, p ScheduleListDueParams) ([]ScheduleEntry, error)
	// ScheduleListNew returns active schedules with no next fire time yet (new, changed or
	// resumed), one page at a time by id.
	ScheduleListNew(ctx context.Context, p ScheduleListNewParams) ([]ScheduleEntry, error)
	// ScheduleInit sets the first next fire time of new schedules; an item whose
	// schedule changed since it was read is left alone (false in the result).
	ScheduleInit(ctx context.Context, p ScheduleInitParams) ([]bool, error)
	// OccurrenceFire inserts the runs of due occurrences and advances their schedules,
	// each item only if its schedule is still where the caller read it; ErrFenced when
	// p.Epoch is not the current epoch of p.Lease.
	OccurrenceFire(ctx context.Context, p OccurrenceFireParams) ([]FireResult, error)
	// ConfigVersion grows whenever jobs or schedules change, so schedulers know to reload.
	ConfigVersion(ctx context.Context) (int64, error)
}

// Schedule is one schedule expression of a job and its persisted firing state.
type Schedule struct {
	ID    int64
	JobID int64
	Index int    // position in the job's schedule list
	Key   string // identity: expression, zone and bounds; a changed key restarts the schedule
	Expr  string
	// NextFireAt is the next occurrence to fire; nil means the scheduler must compute it
	// from the current time (new, changed or resumed schedule).
	NextFireAt *time.Time
	Done       bool // no further occurrence
}

// ScheduleEntry is a schedule the scheduler should keep: its job is not paused.
type ScheduleEntry struct {
	Schedule
	Job  string
	Spec job.Spec
}

// ScheduleSpec is a schedule of a job being applied.
type ScheduleSpec struct {
	Key  string
	Expr string
}

// ScheduleListDueParams selects one page of active schedules whose next fire time is
// set, at most Until, and after the cursor (After, AfterID) in the order (next fire time,
// id) the page comes in.
type ScheduleListDueParams struct {
	Until   time.Time
	After   time.Time // zero: from the earliest
	AfterID int64
	Limit   int // 0: ScheduleListLimitDefault
	Slice   Slice
}

// Slice selects the schedules of one scheduler slot: those whose id mod Slots is Slot.
// The zero value (Slots 0 or 1) selects every schedule.
type Slice struct {
	Slots, Slot int
}

// SlotLease names the lease of scheduler slot i.
func SlotLease(i int) string { return fmt.Sprintf("scheduler/%d", i) }

// ScheduleListNewParams selects one page of active schedules with no next fire time,
// with ids above AfterID, by id.
type ScheduleListNewParams struct {
	Slice   Slice
	AfterID int64
	Limit   int // 0: ScheduleListLimitDefault
}

// ScheduleListLimitDefault is the page size of ScheduleListDue and ScheduleListNew
// when the caller gives none.
const ScheduleListLimitDefault = 1000

// ScheduleInitParams sets the next fire time of schedules whose NextFireAt is nil, in
// one transaction. The result says, item by item, whether it applied. Items name
// distinct schedules.
type ScheduleInitParams struct {
	Items []ScheduleInitItem
}

// ScheduleInitItem is the first next fire time of one schedule.
type ScheduleInitItem struct {
	ID         int64
	NextFireAt *time.Time // nil with Done: the schedule has no occurrence left
	Done       bool
}

// OccurrenceFireParams fires due occurrences of several schedules in one transaction.
type OccurrenceFireParams struct {
	Epoch int64 // the caller's epoch of Lease; 0 skips the check (single-node tests)
	// Lease is the lease whose epoch fences the firing: PrimaryLease ("") or the
	// scheduler slot's (SlotLease) the schedules belong to.
	Lease string
	Now   time.Time
	Items []FireItem
}

// FireItem advances one schedule from Expected to Next and records its occurrences.
type FireItem struct {
	ScheduleID int64
	Expected   time.Time  // the next_fire_at the caller planned from
	Next       *time.Time // new next_fire_at; nil when Done
	Done       bool
	Fire       []time.Time // occurrences that become runs
	Records    []Record    // occurrences recorded without a run (missed, skipped)
}

// Record is a stretch of occurrences that did not become runs.
type Record struct {
	State  RunState // RunMissed or RunSkipped
	First  time.Time
	Last   time.Time
	Count  int
	Reason string
}

// FireResult says what happened to one FireItem.
type FireResult struct {
	ScheduleID int64
	Applied    bool  // false: the schedule had moved on (someone else fired it) or is gone
	Runs       []Run // runs created, including overlap-skipped ones
}
