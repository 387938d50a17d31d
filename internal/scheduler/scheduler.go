package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/tandemhq/tandem/internal/schedule"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults.
const (
	// ReloadCheckDefault is how often the scheduler asks the repository whether the
	// configuration changed (a local change wakes it at once).
	ReloadCheckDefault = time.Second
	// BatchDefault is how many schedules one firing transaction advances at most.
	BatchDefault = 500
	// HorizonDefault is how far ahead the scheduler keeps schedules in memory; the
	// others wait in the repository, read a page at a time as they come within reach.
	HorizonDefault = 30 * time.Second
	// PageDefault is how many schedules one read of the repository returns at most, and
	// about how many the scheduler keeps in memory when more than that are due at once.
	PageDefault = 1000
	// RetryDefault is how long the scheduler waits after a failed repository call.
	RetryDefault = 100 * time.Millisecond
)

// Params configures a Scheduler.
type Params struct {
	Store store.Schedules
	Log   *slog.Logger     // default: discard
	Now   func() time.Time // default time.Now
	// Epoch is the lease epoch the scheduler fires under (0: unfenced, tests only).
	Epoch int64
	// Lease is the lease of that epoch: the primary's ("") or a scheduler slot's, in which
	// case Slice names the slot's share of the schedules (the zero Slice: all of them).
	Lease string
	Slice store.Slice
	// Observe, if set, is called after each committed firing transaction.
	Observe func(results []store.FireResult, committed time.Time)
	// Fired, if set, is told per schedule fired: the job's misfire policy, the lateness
	// of the runs fired on time (within the misfire grace; catch-up firings are left
	// out), and how many occurrences were recorded missed. For the metrics.
	Fired func(policy string, late []time.Duration, missed int)
	// ReloadCheck overrides ReloadCheckDefault.
	ReloadCheck time.Duration
	// Horizon overrides HorizonDefault.
	Horizon time.Duration
	// Page overrides PageDefault.
	Page int
}

// Scheduler fires due occurrences. Run it on the primary only; stop it by canceling
// the context given to Run.
type Scheduler struct {
	p       Params
	wake    chan struct{}
	queue   fireQueue
	queued  map[int64]*entry // by schedule id: what the queue holds
	loaded  key              // every active schedule at or before this key is queued
	version int64
	// fresh says schedules with no next fire time may remain, with ids above freshAfter.
	fresh      bool
	freshAfter int64
}

// key orders schedules as the repository pages them: by next fire time, then id.
type key struct {
	at time.Time
	id int64
}

func (k key) after(o key) bool { return k.at.After(o.at) || (k.at.Equal(o.at) && k.id > o.id) }

// entry is a schedule the scheduler holds in memory: only what firing needs.
type entry struct {
	id      int64
	job     string
	sched   schedule.Schedule
	policy  schedule.Policy
	misfire string // the job's policy as written, for the records' reasons
	next    time.Time
	index   int // in the heap; -1 when not queued
}

func (e *entry) key() key { return key{e.next, e.id} }

// New returns a scheduler; call Run to start it.
func New(p Params) *Scheduler {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.ReloadCheck <= 0 {
		p.ReloadCheck = ReloadCheckDefault
	}
	if p.Horizon <= 0 {
		p.Horizon = HorizonDefault
	}
	if p.Page <= 0 {
		p.Page = PageDefault
	}
	return &Scheduler{p: p, wake: make(chan struct{}, 1), queued: map[int64]*entry{}}
}

// Wake asks the scheduler to check for configuration changes now. It never blocks.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Queued returns how many schedules the scheduler holds in memory. Call it only from
// Observe or after Run has returned: the scheduler's state belongs to Run.
func (s *Scheduler) Queued() int { return len(s.queue) }

// Run fires occurrences until ctx is canceled (returns nil) or a write is fenced
// (returns an error wrapping store.ErrFenced: this node is no longer primary).
func (s *Scheduler) Run(ctx context.Context) error {
	v, err := s.p.Store.ConfigVersion(ctx)
	if err != nil {
		// The repository may come back in a moment: start anyway, and read the version
		// again at the first check (no version is -1).
		s.p.Log.Warn("cannot read configuration version", "err", err)
		v = -1
	}
	s.restart(v)
	timer := time.NewTimer(0)
	defer timer.Stop()
	check := time.NewTicker(s.p.ReloadCheck)
	defer check.Stop()
	for {
		wait := time.Duration(0)
		if err := s.step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			s.p.Log.Error("firing failed; retrying", "err", err)
			wait = RetryDefault
		}
		timer.Reset(max(s.untilNext(), wait))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
			s.maybeReload(ctx)
		case <-check.C:
			s.maybeReload(ctx)
		}
	}
}

// step brings the queue within reach of the horizon, fires what is due, and gives a page
// of new schedules their first next fire time.
func (s *Scheduler) step(ctx context.Context) error {
	for {
		now := s.p.Now()
		if s.refillDue(now) {
			if err := s.refill(ctx, now); err != nil {
				return err
			}
		}
		if len(s.queue) == 0 || s.queue[0].next.After(now) {
			break
		}
		if err := s.fireBatch(ctx, now); err != nil {
			return err
		}
	}
	if s.fresh {
		return s.initPage(ctx)
	}
	return nil
}

// untilNext is how long the scheduler may sleep: until the earliest queued occurrence,
// the next read of the repository, or at most an hour.
func (s *Scheduler) untilNext() time.Duration {
	if s.fresh {
		return 0
	}
	now := s.p.Now()
	d := time.Hour
	if len(s.queue) > 0 {
		d = s.queue[0].next.Sub(now)
	}
	if len(s.queue) < s.p.Page {
		d = min(d, s.loaded.at.Add(-s.p.Horizon/2).Sub(now))
	}
	return max(d, 0)
}

func (s *Scheduler) maybeReload(ctx context.Context) {
	v, err := s.p.Store.ConfigVersion(ctx)
	if err != nil {
		s.p.Log.Warn("cannot read configuration version", "err", err)
		return
	}
	if v != s.version {
		s.restart(v)
	}
}

// restart forgets what is in memory: the queue is read again from the repository
// (earliest first), and so are the schedules that have no next fire time. Configuration
// version v, read before, is what the reads will reflect at least.
func (s *Scheduler) restart(v int64) {
	s.version = v
	s.forget()
	s.fresh, s.freshAfter = true, 0
}

// forget empties the queue; the next step reads it again from the repository.
func (s *Scheduler) forget() {
	clear(s.queue)
	s.queue = s.queue[:0]
	clear(s.queued)
	s.loaded = key{}
}

// refillDue says whether the queue should take in the next page: when it is short and
// what it covers ends within half the horizon.
func (s *Scheduler) refillDue(now time.Time) bool {
	return len(s.queue) < s.p.Page && s.loaded.at.Before(now.Add(s.p.Horizon/2))
}

// refill reads the next page of schedules due within the horizon, after what is queued.
func (s *Scheduler) refill(ctx context.Context, now time.Time) error {
	until := now.Add(s.p.Horizon)
	list, err := s.p.Store.ScheduleListDue(ctx, store.ScheduleListDueParams{Until: until, After: s.loaded.at, AfterID: s.loaded.id, Limit: s.p.Page, Slice: s.p.Slice})
	if err != nil {
		return fmt.Errorf("read due schedules: %w", err)
	}
	parsed := map[int64][]schedule.Schedule{}
	for _, se := range list {
		e, err := s.prepare(se, parsed, now)
		if err != nil {
			s.p.Log.Error("schedule not loaded", "job", se.Job, "schedule", se.Expr, "err", err)
			continue
		}
		if old, ok := s.queued[e.id]; ok { // queued with a time someone else has moved on
			heap.Remove(&s.queue, old.index)
		}
		s.push(e)
	}
	if len(list) < s.p.Page {
		s.loaded = key{until, math.MaxInt64}
	} else {
		last := list[len(list)-1]
		s.loaded = key{*last.NextFireAt, last.ID}
	}
	s.p.Log.Debug("schedules read", "count", len(list), "queued", len(s.queue), "until", s.loaded.at)
	return nil
}

// initPage gives one page of schedules with no next fire time their first one.
func (s *Scheduler) initPage(ctx context.Context) error {
	list, err := s.p.Store.ScheduleListNew(ctx, store.ScheduleListNewParams{AfterID: s.freshAfter, Limit: s.p.Page, Slice: s.p.Slice})
	if err != nil {
		return fmt.Errorf("read new schedules: %w", err)
	}
	now := s.p.Now()
	var init store.ScheduleInitParams
	var fresh []*entry
	parsed := map[int64][]schedule.Schedule{} // by job: parse each job's schedules once
	for _, se := range list {
		e, err := s.prepare(se, parsed, now)
		if err != nil {
			s.p.Log.Error("schedule not loaded", "job", se.Job, "schedule", se.Expr, "err", err)
			continue
		}
		it := store.ScheduleInitItem{ID: e.id, Done: e.next.IsZero()}
		if !it.Done {
			next := e.next
			it.NextFireAt = &next
		}
		init.Items = append(init.Items, it)
		fresh = append(fresh, e)
	}
	if len(init.Items) > 0 {
		applied, err := s.p.Store.ScheduleInit(ctx, init)
		if err != nil {
			return fmt.Errorf("init schedules: %w", err)
		}
		for i, ok := range applied {
			// Beyond what the queue covers, a schedule waits in the repository.
			if e := fresh[i]; ok && !e.next.IsZero() && !e.key().after(s.loaded) {
				s.push(e)
			}
		}
		if slices.Contains(applied, false) {
			// Another scheduler initialised some first, perhaps within what the queue
			// covers: read the queue again.
			s.forget()
		}
	}
	if len(list) > 0 {
		s.freshAfter = list[len(list)-1].ID
	}
	s.fresh = len(list) == s.p.Page
	if len(list) > 0 {
		s.p.Log.Debug("schedules initialised", "count", len(init.Items), "queued", len(s.queue))
	}
	return nil
}

func (s *Scheduler) push(e *entry) {
	s.queued[e.id] = e
	heap.Push(&s.queue, e)
}

// prepare parses a schedule. For a schedule with no next fire time yet, it computes the
// first occurrence after now (zero when there is none); the caller persists it.
func (s *Scheduler) prepare(se store.ScheduleEntry, parsed map[int64][]schedule.Schedule, now time.Time) (*entry, error) {
	spec := se.Spec
	scheds, ok := parsed[se.JobID]
	if !ok {
		var err error
		if scheds, err = spec.Schedules(); err != nil {
			return nil, err
		}
		parsed[se.JobID] = scheds
	}
	if se.Index >= len(scheds) {
		return nil, fmt.Errorf("schedule %d of job %s: index %d out of range", se.ID, se.Job, se.Index)
	}
	e := &entry{id: se.ID, job: se.Job, sched: scheds[se.Index], policy: spec.Policy(), misfire: spec.Misfire}
	if se.NextFireAt != nil {
		e.next = *se.NextFireAt
	} else if next, ok := e.sched.Next(now); ok {
		e.next = next
	}
	return e, nil
}

// fireBatch plans and fires up to BatchDefault schedules due at now, earliest first.
func (s *Scheduler) fireBatch(ctx context.Context, now time.Time) error {
	var batch []*entry
	var items []store.FireItem
	for len(s.queue) > 0 && !s.queue[0].next.After(now) && len(batch) < BatchDefault {
		e := heap.Pop(&s.queue).(*entry)
		batch = append(batch, e)
		items = append(items, s.plan(e, now))
	}
	results, err := s.p.Store.OccurrenceFire(ctx, store.OccurrenceFireParams{Epoch: s.p.Epoch, Lease: s.p.Lease, Now: now, Items: items})
	if err != nil {
		for _, e := range batch { // keep them due; they are retried
			heap.Push(&s.queue, e)
		}
		return err
	}
	committed := s.p.Now()
	stale := false
	for i, r := range results {
		e, it := batch[i], items[i]
		if !r.Applied {
			stale = true // someone else moved it: read the repository again
			continue
		}
		s.logFired(e, it, r)
		if s.p.Fired != nil {
			s.observe(e, r, committed)
		}
		delete(s.queued, e.id)
		if it.Done {
			continue
		}
		e.next = *it.Next
		if !e.key().after(s.loaded) {
			s.push(e)
		} // else it waits in the repository until it comes within reach
	}
	if s.p.Observe != nil {
		s.p.Observe(results, committed)
	}
	if stale {
		s.forget()
	}
	return nil
}

// observe tells Fired what one schedule's firing made.
func (s *Scheduler) observe(e *entry, r store.FireResult, committed time.Time) {
	var late []time.Duration
	missed := 0
	for _, run := range r.Runs {
		switch {
		case run.ScheduledAt == nil:
		case run.State == store.RunMissed:
			missed += max(run.Occurrences, 1)
		case run.State == store.RunSkipped:
		default:
			if d := committed.Sub(*run.ScheduledAt); d <= e.policy.Grace {
				late = append(late, d)
			}
		}
	}
	s.p.Fired(e.misfire, late, missed)
}

// plan turns the schedule's due occurrences into one FireItem.
func (s *Scheduler) plan(e *entry, now time.Time) store.FireItem {
	pl := e.sched.Plan(e.next, now, e.policy)
	it := store.FireItem{ScheduleID: e.id, Expected: e.next, Fire: pl.Fire, Done: pl.Done}
	if !pl.Done {
		next := pl.Next
		it.Next = &next
	}
	if pl.Missed.Count > 0 {
		it.Records = append(it.Records, store.Record{State: store.RunMissed, First: pl.Missed.First, Last: pl.Missed.Last,
			Count: pl.Missed.Count, Reason: missedReason(e, pl.Missed)})
	}
	for _, r := range pl.Skipped {
		it.Records = append(it.Records, store.Record{State: store.RunSkipped, First: r.First, Last: r.Last, Count: r.Count,
			Reason: fmt.Sprintf("blackout date %s: %d occurrence(s) skipped", r.First.In(e.sched.Location).Format(time.DateOnly), r.Count)})
	}
	return it
}

func missedReason(e *entry, r schedule.Range) string {
	return fmt.Sprintf("missed %d occurrence(s) from %s to %s (later than misfire_grace %s; misfire policy %s)",
		r.Count, r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339), e.policy.Grace, e.misfire)
}

func (s *Scheduler) logFired(e *entry, it store.FireItem, r store.FireResult) {
	for _, rec := range it.Records {
		s.p.Log.Info("occurrences not run", "job", e.job, "state", rec.State, "count", rec.Count, "reason", rec.Reason)
	}
	for _, run := range r.Runs {
		s.p.Log.Debug("fired", "job", e.job, "run", run.ID, "scheduled_at", run.ScheduledAt, "state", run.State)
	}
}
