package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tandemhq/tandem/internal/job"
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
)

// Params configures a Scheduler.
type Params struct {
	Store store.Store
	Log   *slog.Logger
	Now   func() time.Time // default time.Now
	// Epoch is the lease epoch the scheduler fires under (0: unfenced, tests only).
	Epoch int64
	// Observe, if set, is called after each committed firing transaction.
	Observe func(results []store.FireResult, committed time.Time)
	// ReloadCheck overrides ReloadCheckDefault.
	ReloadCheck time.Duration
}

// Scheduler fires due occurrences. Run it on the primary only; stop it by canceling
// the context given to Run.
type Scheduler struct {
	p       Params
	wake    chan struct{}
	entries map[int64]*entry
	queue   fireQueue
	version int64
}

type entry struct {
	store.ScheduleEntry
	sched  schedule.Schedule
	policy schedule.Policy
	next   time.Time
	index  int // in the heap; -1 when not queued
}

// New returns a scheduler; call Run to start it.
func New(p Params) *Scheduler {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.ReloadCheck <= 0 {
		p.ReloadCheck = ReloadCheckDefault
	}
	return &Scheduler{p: p, wake: make(chan struct{}, 1)}
}

// Wake asks the scheduler to check for configuration changes now. It never blocks.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fires occurrences until ctx is canceled (returns nil) or a write is fenced
// (returns an error wrapping store.ErrFenced: this node is no longer primary).
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.reload(ctx); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	check := time.NewTicker(s.p.ReloadCheck)
	defer check.Stop()
	for {
		if err := s.fireDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			s.p.Log.Error("firing failed; retrying", "err", err)
		}
		timer.Reset(s.untilNext())
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

func (s *Scheduler) untilNext() time.Duration {
	if len(s.queue) == 0 {
		return time.Hour
	}
	return max(s.queue[0].next.Sub(s.p.Now()), 0)
}

func (s *Scheduler) maybeReload(ctx context.Context) {
	v, err := s.p.Store.ConfigVersion(ctx)
	if err != nil {
		s.p.Log.Warn("cannot read configuration version", "err", err)
		return
	}
	if v != s.version {
		if err := s.reload(ctx); err != nil && ctx.Err() == nil {
			s.p.Log.Error("reloading schedules failed", "err", err)
		}
	}
}

// reload reads every active schedule from the repository and rebuilds the queue.
func (s *Scheduler) reload(ctx context.Context) error {
	v, err := s.p.Store.ConfigVersion(ctx)
	if err != nil {
		return fmt.Errorf("reload schedules: %w", err)
	}
	list, err := s.p.Store.ScheduleList(ctx)
	if err != nil {
		return fmt.Errorf("reload schedules: %w", err)
	}
	s.entries = make(map[int64]*entry, len(list))
	s.queue = s.queue[:0]
	var fresh []*entry
	var init store.ScheduleInitParams
	parsed := map[int64][]schedule.Schedule{} // by job: parse each job's schedules once
	for _, se := range list {
		e, err := s.prepare(se, parsed)
		if err != nil {
			s.p.Log.Error("schedule not loaded", "job", se.Job, "schedule", se.Expr, "err", err)
			continue
		}
		if se.NextFireAt == nil {
			it := store.ScheduleInitItem{ID: se.ID, Done: e.next.IsZero()}
			if !it.Done {
				next := e.next
				it.NextFireAt = &next
			}
			init.Items = append(init.Items, it)
			fresh = append(fresh, e)
			continue
		}
		s.add(e)
	}
	if len(init.Items) > 0 {
		// Another scheduler may have initialised some first; only the applied ones are
		// queued now, the others are read back at the next reload.
		applied, err := s.p.Store.ScheduleInit(ctx, init)
		if err != nil {
			return fmt.Errorf("reload schedules: %w", err)
		}
		for i, ok := range applied {
			if ok && !fresh[i].next.IsZero() {
				s.add(fresh[i])
			}
		}
		if slices.Contains(applied, false) {
			v = -1 // force a reload at the next check
		}
	}
	heap.Init(&s.queue)
	s.version = v
	s.p.Log.Debug("schedules loaded", "count", len(s.entries), "version", v)
	return nil
}

func (s *Scheduler) add(e *entry) {
	s.entries[e.ID] = e
	s.queue = append(s.queue, e)
}

// prepare parses a schedule. For a schedule with no next fire time yet, it computes the
// first occurrence after now (zero when there is none); the caller persists it.
func (s *Scheduler) prepare(se store.ScheduleEntry, parsed map[int64][]schedule.Schedule) (*entry, error) {
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
	e := &entry{ScheduleEntry: se, sched: scheds[se.Index], policy: spec.Policy()}
	if se.NextFireAt != nil {
		e.next = *se.NextFireAt
	} else if next, ok := e.sched.Next(s.p.Now()); ok {
		e.next = next
	}
	return e, nil
}

// fireDue plans and fires every schedule whose next occurrence is due.
func (s *Scheduler) fireDue(ctx context.Context) error {
	for len(s.queue) > 0 && !s.queue[0].next.After(s.p.Now()) {
		now := s.p.Now()
		var batch []*entry
		var items []store.FireItem
		for len(s.queue) > 0 && !s.queue[0].next.After(now) && len(batch) < BatchDefault {
			e := heap.Pop(&s.queue).(*entry)
			batch = append(batch, e)
			items = append(items, s.plan(e, now))
		}
		results, err := s.p.Store.OccurrenceFire(ctx, store.OccurrenceFireParams{Epoch: s.p.Epoch, Now: now, Items: items})
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
				stale = true // someone else moved it: re-read the repository
				continue
			}
			s.logFired(e, it, r)
			if it.Done {
				delete(s.entries, e.ID)
				continue
			}
			e.next = *it.Next
			heap.Push(&s.queue, e)
		}
		if s.p.Observe != nil {
			s.p.Observe(results, committed)
		}
		if stale {
			if err := s.reload(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// plan turns the schedule's due occurrences into one FireItem.
func (s *Scheduler) plan(e *entry, now time.Time) store.FireItem {
	pl := e.sched.Plan(e.next, now, e.policy)
	it := store.FireItem{ScheduleID: e.ID, Expected: e.next, Fire: pl.Fire, Done: pl.Done}
	if !pl.Done {
		next := pl.Next
		it.Next = &next
	}
	if pl.Missed.Count > 0 {
		it.Records = append(it.Records, store.Record{State: store.RunMissed, First: pl.Missed.First, Last: pl.Missed.Last,
			Count: pl.Missed.Count, Reason: missedReason(e.Spec, pl.Missed)})
	}
	for _, r := range pl.Skipped {
		it.Records = append(it.Records, store.Record{State: store.RunSkipped, First: r.First, Last: r.Last, Count: r.Count,
			Reason: fmt.Sprintf("blackout date %s: %d occurrence(s) skipped", r.First.In(e.sched.Location).Format(time.DateOnly), r.Count)})
	}
	return it
}

func missedReason(spec job.Spec, r schedule.Range) string {
	return fmt.Sprintf("missed %d occurrence(s) from %s to %s (later than misfire_grace %s; misfire policy %s)",
		r.Count, r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339), spec.MisfireGrace, spec.Misfire)
}

func (s *Scheduler) logFired(e *entry, it store.FireItem, r store.FireResult) {
	for _, rec := range it.Records {
		s.p.Log.Info("occurrences not run", "job", e.Job, "state", rec.State, "count", rec.Count, "reason", rec.Reason)
	}
	for _, run := range r.Runs {
		s.p.Log.Debug("fired", "job", e.Job, "run", run.ID, "scheduled_at", run.ScheduledAt, "state", run.State)
	}
}
