package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Scheduler slots: two holders racing for a slot's lease get it once; the slot's epoch,
// not the primary's, fences the firing of its schedules, so a deposed slot holder fires
// nothing; each slot lists only its share of the schedules.
func testSchedulerSlots(t *testing.T, s store.Store) {
	apply(t, s, spec("s1", "@every 1m"), spec("s2", "@every 1m"), spec("s3", "@every 1m"))
	var scheds []store.Schedule
	for _, name := range []string{"s1", "s2", "s3"} {
		scheds = append(scheds, initAt(t, s, name, t0)[0])
	}
	slot := store.SlotLease(0)
	acquireSlot := func(holder string, ttl time.Duration) (store.Lease, error) {
		return s.LeaseAcquire(ctx(t), store.LeaseAcquireParams{Name: slot, Holder: holder, TTL: ttl})
	}
	// Two holders race: one gets the slot.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	leases := make([]store.Lease, 2)
	for i, h := range []string{"a#1", "b#1"} {
		wg.Go(func() { leases[i], errs[i] = acquireSlot(h, 50*time.Millisecond) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("racing for a slot: %v, %v; want exactly one holder", errs[0], errs[1])
	}
	first := leases[0]
	if errs[0] != nil {
		first = leases[1]
	}
	// The primary's epoch does not fence a slot's firing, nor the slot's the primary's.
	primary := must[store.Lease](t)(acquire(t, s, "p#1", time.Minute))
	sc := scheds[0]
	next := t0.Add(time.Minute)
	item := []store.FireItem{{ScheduleID: sc.ID, Expected: t0, Next: &next, Fire: []time.Time{t0}}}
	if primary.Epoch == first.Epoch {
		primary = must[store.Lease](t)(s.LeaseRenew(ctx(t), store.LeaseRenewParams{Name: store.PrimaryLease, Holder: "p#1", Epoch: primary.Epoch, TTL: time.Minute}))
	}
	// The slot changes hands once its lease expires: the old holder is deposed.
	var second store.Lease
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := acquireSlot("c#1", time.Minute)
		if err == nil {
			second = l
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("take the expired slot: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Epoch: first.Epoch, Lease: slot, Now: t0, Items: item})
	wantErr(t, err, store.ErrFenced)
	if n := countRuns(t, s, "s1"); n != 0 {
		t.Fatalf("a deposed slot holder fired: %d runs", n)
	}
	res := must[[]store.FireResult](t)(s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Epoch: second.Epoch, Lease: slot, Now: t0, Items: item}))
	if !res[0].Applied || countRuns(t, s, "s1") != 1 {
		t.Fatalf("the slot's holder fired: %+v, %d runs; want one run", res, countRuns(t, s, "s1"))
	}
	// Each slot lists its share: ids mod 2.
	seen := map[int64]int{}
	for i := range 2 {
		due := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.Add(time.Hour), Slice: store.Slice{Slots: 2, Slot: i}}))
		for _, e := range due {
			if int(e.Schedule.ID%2) != i {
				t.Fatalf("slot %d of 2 listed schedule %d", i, e.Schedule.ID)
			}
			seen[e.Schedule.ID]++
		}
	}
	all := must[[]store.ScheduleEntry](t)(s.ScheduleListDue(ctx(t), store.ScheduleListDueParams{Until: t0.Add(time.Hour)}))
	if len(seen) != len(all) || len(all) != 3 {
		t.Fatalf("slots listed %v, all %d; want every schedule in exactly one slot", seen, len(all))
	}
}
