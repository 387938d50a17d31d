package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Defaults of Params.
const (
	PollDefault  = time.Second
	BatchDefault = 500
	WatchDefault = 5 * time.Second
)

// Store is what a Notifier needs of the repository.
type Store interface {
	store.Rules
	EventList(ctx context.Context, p store.EventListParams) ([]store.Event, error)
	EventAppend(ctx context.Context, p store.EventAppendParams) error
	RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error)
	JobGet(ctx context.Context, name string) (store.Job, error)
}

// Params configures a Notifier.
type Params struct {
	Store Store
	Log   *slog.Logger
	Node  string
	Epoch int64            // the primary's term; every advance is fenced by it
	Now   func() time.Time // the node's clock corrected to the repository's
	Poll  time.Duration    // how often it looks for new events; default 1s
	Batch int              // events judged per transaction; default 500
	Watch time.Duration    // how often running runs are checked for run.late/run.long; default 5s
	// Sent is called after notifications with delivery records were recorded (the
	// node wakes its deliverer).
	Sent func()
}

// Notifier follows the event log for the primary. Run it under the primary's term.
type Notifier struct {
	p     Params
	rules map[string]*Rule // compiled, by name
	spec  map[string]string
	wake  chan struct{}
	watch time.Time
}

// New returns a Notifier.
func New(p Params) *Notifier {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Sent == nil {
		p.Sent = func() {}
	}
	p.Poll, p.Batch, p.Watch = cmp.Or(p.Poll, PollDefault), cmp.Or(p.Batch, BatchDefault), cmp.Or(p.Watch, WatchDefault)
	return &Notifier{p: p, rules: map[string]*Rule{}, spec: map[string]string{}, wake: make(chan struct{}, 1)}
}

// Wake makes the notifier look now (an event was written).
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run judges events until ctx ends (nil) or the term is superseded (store.ErrFenced).
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.p.Poll)
	defer t.Stop()
	for {
		for {
			k, err := n.Once(ctx)
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			if err != nil && ctx.Err() == nil {
				n.p.Log.Warn("notifier pass failed", "err", err)
			}
			if err != nil || k < n.p.Batch {
				break
			}
		}
		if err := n.watchRuns(ctx); errors.Is(err, store.ErrFenced) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.wake:
		case <-t.C:
		}
	}
}

// Once judges one batch of events after the cursor and sums up the repeat windows
// that have passed, in one fenced transaction; it returns how many events it judged.
func (n *Notifier) Once(ctx context.Context) (int, error) {
	rules, err := n.loadRules(ctx)
	if err != nil {
		return 0, err
	}
	st, err := n.p.Store.NotifyState(ctx)
	if err != nil {
		return 0, err
	}
	evs, err := n.p.Store.EventList(ctx, store.EventListParams{Follow: true, After: st.Cursor, Limit: n.p.Batch})
	if err != nil {
		return 0, err
	}
	windows := map[[2]string]store.Repeat{}
	for _, w := range st.Repeats {
		windows[[2]string{w.Rule, w.Key}] = w
	}
	changed := map[[2]string]bool{}
	var notices []store.NotificationNew
	adv := store.NotifyAdvanceParams{Epoch: n.p.Epoch, Node: n.p.Node, From: st.Cursor, To: st.Cursor, Now: n.p.Now()}
	for _, se := range evs {
		adv.To = se.ID
		ev := FromStore(se)
		for _, r := range rules {
			ok, err := r.Match(ev)
			if err != nil {
				n.p.Log.Warn("rule cannot judge an event", "rule", r.Spec.Name, "event", ev.ID, "err", err)
			}
			if !ok {
				continue
			}
			m, err := r.Render(ev)
			if err != nil {
				// Checked at apply against every type; the event's data is to blame.
				n.p.Log.Warn("rule cannot render its notice", "rule", r.Spec.Name, "event", ev.ID, "err", err)
				m = Message{Key: ev.Type, Subject: fmt.Sprintf("tandem: %s on %s", ev.Type, ev.Node), Body: ev.Message + "\n\n(" + err.Error() + ")\n"}
			}
			nt := store.NotificationNew{Rule: r.Spec.Name, EventID: ev.ID, EventType: ev.Type, Kind: store.NoticeKind, Key: m.Key,
				State: store.NotificationSent, Subject: m.Subject, Body: m.Body, Count: 1, Channels: r.Channels()}
			if len(nt.Channels) == 0 {
				nt.State = store.NotificationNoChannel
			}
			if rep := r.Spec.Repeat.D(); rep > 0 {
				k := [2]string{r.Spec.Name, m.Key}
				w, open := windows[k]
				if open && ev.At.Before(w.Until) {
					nt.State, nt.Channels = store.NotificationSuppressed, nil
					w.Suppressed++
					w.LastEvent = ev.ID
					if w.FirstEvent == 0 {
						w.FirstEvent = ev.ID
					}
				} else {
					if open && w.Suppressed > 0 {
						notices = append(notices, n.digest(ctx, r, w))
					}
					w = store.Repeat{Rule: r.Spec.Name, Key: m.Key, Since: ev.At, Until: ev.At.Add(rep)}
				}
				windows[k], changed[k] = w, true
			}
			notices = append(notices, nt)
		}
	}
	if len(evs) < n.p.Batch { // at the end of the log: windows that passed are summed up
		for k, w := range windows {
			if w.Until.After(adv.Now) {
				continue
			}
			if r, ok := n.rules[w.Rule]; ok && w.Suppressed > 0 {
				notices = append(notices, n.digest(ctx, r, w))
			}
			windows[k], changed[k] = store.Repeat{Rule: w.Rule, Key: w.Key}, true
		}
	}
	for k := range changed {
		adv.Repeats = append(adv.Repeats, windows[k])
	}
	slices.SortFunc(adv.Repeats, func(a, b store.Repeat) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Key, b.Key))
	})
	if adv.To == adv.From && len(notices) == 0 && len(adv.Repeats) == 0 {
		return 0, nil
	}
	adv.Notices = notices
	made, err := n.p.Store.NotifyAdvance(ctx, adv)
	if err != nil {
		return 0, err
	}
	sent := false
	for _, nt := range made {
		n.p.Log.Info("notification", "id", nt.ID, "rule", nt.Rule, "event", nt.EventID, "type", nt.EventType, "kind", nt.Kind,
			"key", nt.Key, "state", nt.State)
		sent = sent || nt.State == store.NotificationSent
	}
	if sent {
		n.p.Sent()
	}
	return len(evs), nil
}

// digest sums up the repeats a window suppressed.
func (n *Notifier) digest(ctx context.Context, r *Rule, w store.Repeat) store.NotificationNew {
	typ := strings.Join(r.Spec.On, "/")
	if e, err := n.p.Store.EventGet(ctx, w.LastEvent); err == nil {
		typ = e.Type
	}
	times := "times"
	if w.Suppressed == 1 {
		times = "time"
	}
	subject := fmt.Sprintf("tandem: %s: %s %d more %s within %s (rule %s)", w.Key, typ, w.Suppressed, times, r.Spec.Repeat, r.Spec.Name)
	body := fmt.Sprintf("Rule %s suppressed %d repeats of key %q between %s and %s (events %d to %d); the first was sent.\n",
		r.Spec.Name, w.Suppressed, w.Key, w.Since.UTC().Format(time.RFC3339), w.Until.UTC().Format(time.RFC3339), w.FirstEvent, w.LastEvent)
	nt := store.NotificationNew{Rule: r.Spec.Name, EventID: w.LastEvent, EventType: typ, Kind: store.DigestKind, Key: w.Key,
		State: store.NotificationSent, Subject: subject, Body: body, Count: w.Suppressed, Channels: r.Channels()}
	if len(nt.Channels) == 0 {
		nt.State = store.NotificationNoChannel
	}
	return nt
}

// loadRules returns the stored rules, compiled (a rule stored by an older release that
// no longer compiles is skipped and logged).
func (n *Notifier) loadRules(ctx context.Context) ([]*Rule, error) {
	stored, err := n.p.Store.RuleList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Rule, 0, len(stored))
	seen := map[string]bool{}
	for _, sr := range stored {
		seen[sr.Name] = true
		if r, ok := n.rules[sr.Name]; ok && n.spec[sr.Name] == string(sr.Spec) {
			out = append(out, r)
			continue
		}
		r, err := Load(sr)
		if err != nil {
			n.p.Log.Warn("stored rule does not compile; skipped", "rule", sr.Name, "err", err)
			continue
		}
		n.rules[sr.Name], n.spec[sr.Name] = r, string(sr.Spec)
		out = append(out, r)
	}
	for name := range n.rules {
		if !seen[name] {
			delete(n.rules, name)
			delete(n.spec, name)
		}
	}
	return out, nil
}

// Load compiles a stored rule.
func Load(sr store.Rule) (*Rule, error) {
	s, err := Decode(sr.Spec)
	if err != nil {
		return nil, err
	}
	r, err := Compile(s)
	if err != nil {
		return nil, err
	}
	r.SinceEvent = sr.SinceEvent
	return r, nil
}
