package lease_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/lease"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slowStore delays lease renewals while slow is set, honouring the context.
type slowStore struct {
	store.Store
	slow atomic.Bool
}

func (s *slowStore) LeaseRenew(ctx context.Context, p store.LeaseRenewParams) (store.Lease, error) {
	if s.slow.Load() {
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return store.Lease{}, ctx.Err()
		}
	}
	return s.Store.LeaseRenew(ctx, p)
}

type events struct {
	mu      sync.Mutex
	elected []int64
	terms   []lease.Term
	deposed []string
	at      []time.Time
}

func (e *events) keeper(st store.Store, holder string, rank int) *lease.Keeper {
	lv, _ := st.(store.Liveness)
	return lease.New(lease.Params{Store: st, Liveness: lv, Log: slog.New(slog.DiscardHandler), Holder: holder, Node: holder,
		Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond,
		Rank: func(context.Context) int { return rank },
		Elected: func(t lease.Term) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.elected = append(e.elected, t.Epoch)
			e.terms = append(e.terms, t)
		},
		Deposed: func(t lease.Term) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.deposed, e.at = append(e.deposed, t.Reason()), append(e.at, time.Now())
		}})
}

func (e *events) counts() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.elected), len(e.deposed)
}

func open(t *testing.T) store.Store {
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func run(t *testing.T, k *lease.Keeper) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = k.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// A renewal that hangs must not extend trust: the holder steps down by itself once
// start-of-last-successful-renewal + TTL - margin has passed.
func TestSlowRenewStepsDownWithinTrust(t *testing.T) {
	t.Parallel()
	st := &slowStore{Store: open(t)}
	var ev events
	stop := run(t, ev.keeper(st, "a", 0))
	defer stop()
	testutil.Wait(t, 10*time.Second, "election", func() bool { n, _ := ev.counts(); return n == 1 })
	slowFrom := time.Now()
	st.slow.Store(true)
	testutil.Wait(t, 10*time.Second, "stepping down", func() bool { _, n := ev.counts(); return n == 1 })
	ev.mu.Lock()
	took := ev.at[0].Sub(slowFrom)
	ev.mu.Unlock()
	// Trust is at most TTL - margin = 400ms after the last renewal that started before
	// the store became slow.
	if took > 450*time.Millisecond {
		t.Fatalf("stepped down %s after renewals stalled, want within TTL - margin (400ms)", took)
	}
}

// When the primary stops, it resigns and a standby takes over at once; the epoch grows.
func TestResignHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	st := open(t)
	var a, b events
	stopA := run(t, a.keeper(st, "a", 0))
	testutil.Wait(t, 10*time.Second, "a elected", func() bool { n, _ := a.counts(); return n == 1 })
	stopB := run(t, b.keeper(st, "b", 0))
	defer stopB()
	start := time.Now()
	stopA()
	testutil.Wait(t, 10*time.Second, "b elected", func() bool { n, _ := b.counts(); return n == 1 })
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Fatalf("takeover after a resignation took %s, want well under the TTL", took)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.elected[0] != 2 {
		t.Fatalf("b elected at epoch %d, want 2", b.elected[0])
	}
}

// The better-ranked standby takes a free lease first.
func TestRankOrdersTakeover(t *testing.T) {
	t.Parallel()
	st := open(t)
	// A previous primary's lapsed lease (on an empty repository the first to start wins).
	if _, err := st.LeaseAcquire(context.Background(), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "old#1",
		Node: "old", TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var first, second events
	stop2 := run(t, second.keeper(st, "second", 3))
	stop1 := run(t, first.keeper(st, "first", 0))
	defer stop1()
	defer stop2()
	testutil.Wait(t, 10*time.Second, "an election", func() bool {
		a, _ := first.counts()
		b, _ := second.counts()
		return a+b > 0
	})
	if n, _ := first.counts(); n != 1 {
		t.Fatal("the standby ranked 3 took the lease before the one ranked 0")
	}
}

// A holder whose liveness lock is free (its process died) is taken over before its lease
// expires.
func TestDeadHolderTakenOverBeforeExpiry(t *testing.T) {
	t.Parallel()
	st := open(t)
	if _, err := st.LeaseAcquire(context.Background(), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "ghost#1",
		Node: "ghost", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var b events
	stop := run(t, b.keeper(st, "b", 0))
	defer stop()
	testutil.Wait(t, 10*time.Second, "takeover from the dead holder", func() bool { n, _ := b.counts(); return n == 1 })
}

// A planned handover goes to the named successor only, and the node that handed over can
// be handed the lease straight back: it does not sit out a cooldown.
func TestHandoverAndBackAtOnce(t *testing.T) {
	t.Parallel()
	st := open(t)
	for _, h := range []string{"a", "b", "c"} { // every process is alive throughout
		release, err := st.(store.Liveness).LivenessHold(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
	var a, b, c events
	ka := a.keeper(st, "a", 0)
	stopA := run(t, ka)
	defer stopA()
	testutil.Wait(t, 10*time.Second, "a elected", func() bool { n, _ := a.counts(); return n == 1 })
	kb := b.keeper(st, "b", 1)
	stopB := run(t, kb)
	defer stopB()
	// c ranks before b: it would win a free lease, but not one handed to b.
	stopC := run(t, c.keeper(st, "c", 0))
	defer stopC()

	ctx := context.Background()
	start := time.Now()
	if err := ka.Handover(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	kb.Wake()
	testutil.Wait(t, 10*time.Second, "b elected", func() bool { n, _ := b.counts(); return n == 1 })
	if n, _ := c.counts(); n != 0 {
		t.Fatal("c took a lease handed over to b")
	}
	if err := kb.Handover(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	ka.Wake()
	testutil.Wait(t, 10*time.Second, "a elected again", func() bool { n, _ := a.counts(); return n == 2 })
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Fatalf("two handovers took %s, want each within a few polls (20ms)", took)
	}
	if err := ka.Handover(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	if err := ka.Handover(ctx, "b"); err == nil {
		t.Fatal("a handed over a lease it no longer holds")
	}
	if n, _ := c.counts(); n != 0 {
		t.Fatal("c took a lease reserved for another node")
	}
}

// A term is a value with a lifetime: its context lasts exactly as long as the role, and
// tells why it ended, so what runs under it stops without being told.
func TestTermEndsWithTheRole(t *testing.T) {
	t.Parallel()
	st := &slowStore{Store: open(t)}
	var ev events
	stop := run(t, ev.keeper(st, "a", 0))
	defer stop()
	testutil.Wait(t, 10*time.Second, "election", func() bool { n, _ := ev.counts(); return n == 1 })
	ev.mu.Lock()
	term := ev.terms[0]
	ev.mu.Unlock()
	if term.Epoch == 0 || term.Ended() != nil || term.Context().Err() != nil {
		t.Fatalf("a new term: epoch %d, ended %v", term.Epoch, term.Ended())
	}
	st.slow.Store(true)
	select {
	case <-term.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the term's context did not end when renewals stalled")
	}
	if !errors.Is(term.Ended(), lease.ErrTermEnded) || !strings.Contains(term.Reason(), "renew failed") {
		t.Fatalf("ended term: %v (reason %q), want renew failed", term.Ended(), term.Reason())
	}
	var zero lease.Term
	if zero.Ended() == nil {
		t.Fatal("the zero term has not ended")
	}
}

// A handover and a stop record the term's Resigned event in the resignation's
// transaction, and tell Deposed so.
func TestResignRecordsItsEvent(t *testing.T) {
	t.Parallel()
	st := open(t)
	var mu sync.Mutex
	var ended []string
	keeper := func(holder string) *lease.Keeper {
		return lease.New(lease.Params{Store: st, Log: slog.New(slog.DiscardHandler), Holder: holder, Node: holder,
			Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond,
			Resigned: func(t lease.Term, reason string) store.EventAppendParams {
				return store.EventAppendParams{Type: "primary.stepped_down", Node: holder, Message: reason,
					Data: map[string]any{"epoch": t.Epoch, "reason": reason}, Now: time.Now()}
			},
			Deposed: func(t lease.Term) {
				mu.Lock()
				defer mu.Unlock()
				ended = append(ended, fmt.Sprintf("%s %d recorded=%v", holder, t.Epoch, t.EndRecorded()))
			}})
	}
	stepDowns := func() []store.Event {
		evs, err := st.EventList(context.Background(), store.EventListParams{Type: "primary.stepped_down", Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	holder := func() string {
		l, err := st.LeaseGet(context.Background(), store.PrimaryLease)
		if err != nil || !l.ExpiresAt.After(l.Now) {
			return ""
		}
		return l.Holder
	}
	a := keeper("a")
	stopA := run(t, a)
	defer stopA()
	testutil.Wait(t, 10*time.Second, "a elected", func() bool { return holder() == "a" })
	if err := a.Handover(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if evs := stepDowns(); len(evs) != 1 || evs[0].Node != "a" || evs[0].Message != "switching over to b" {
		t.Fatalf("events %+v, want a's step-down, switching over to b", evs)
	}
	b := keeper("b")
	stopB := run(t, b)
	testutil.Wait(t, 10*time.Second, "b elected", func() bool { return holder() == "b" })
	stopB() // resigns: its step-down is recorded with the resignation
	if evs := stepDowns(); len(evs) != 2 || evs[1].Node != "b" {
		t.Fatalf("events %+v, want b's step-down second", evs)
	}
	mu.Lock()
	got := strings.Join(ended, "; ")
	mu.Unlock()
	if got != "a 1 recorded=true; b 2 recorded=true" {
		t.Fatalf("terms ended: %s", got)
	}
}

// stealStore lets "x" take the lease over just before a resignation, as if the
// resigning holder had been frozen past its lease.
type stealStore struct{ store.Store }

func (s stealStore) LeaseResign(ctx context.Context, p store.LeaseResignParams) error {
	if err := s.Store.LeaseResign(ctx, store.LeaseResignParams{Name: p.Name, Holder: p.Holder, Epoch: p.Epoch}); err != nil {
		return err
	}
	if _, err := s.Store.LeaseAcquire(ctx, store.LeaseAcquireParams{Name: p.Name, Holder: "x", Node: "x", TTL: time.Minute}); err != nil {
		return err
	}
	return s.Store.LeaseResign(ctx, p)
}

// A handover by a holder whose lease was taken over meanwhile is fenced: it records
// nothing, says so, and the term ends unrecorded.
func TestFencedHandoverRecordsNothing(t *testing.T) {
	t.Parallel()
	st := stealStore{open(t)}
	recorded := make(chan bool, 1)
	elected := make(chan struct{}, 1)
	k := lease.New(lease.Params{Store: st, Log: slog.New(slog.DiscardHandler), Holder: "a", Node: "a",
		Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond,
		Resigned: func(t lease.Term, reason string) store.EventAppendParams {
			return store.EventAppendParams{Type: "primary.stepped_down", Node: "a", Message: reason, Now: time.Now()}
		},
		Elected: func(lease.Term) { elected <- struct{}{} },
		Deposed: func(t lease.Term) { recorded <- t.EndRecorded() }})
	stop := run(t, k)
	defer stop()
	select {
	case <-elected:
	case <-time.After(10 * time.Second):
		t.Fatal("not elected within 10s")
	}
	if err := k.Handover(context.Background(), "b"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("handover of a lease taken over: %v, want ErrFenced", err)
	}
	select {
	case r := <-recorded:
		if r {
			t.Fatal("a fenced handover's term ended recorded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the term did not end within 10s")
	}
	evs, err := st.EventList(context.Background(), store.EventListParams{Type: "primary.stepped_down"})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events %+v (%v), want none", evs, err)
	}
}
