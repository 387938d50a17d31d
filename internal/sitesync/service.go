package sitesync

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults.
const (
	// PollDefault is how often a caught-up sender looks for new changes.
	PollDefault = 50 * time.Millisecond
	// RetryMax caps the wait between failed batches.
	RetryMax = time.Minute
	// PruneEvery is how often the primary applies the change log's retention.
	PruneEvery = 10 * time.Minute
	// FullScale is how many sitesync.timeout a full sync's call may take.
	FullScale = 60
)

// settingID keeps this repository's sync fingerprint, made by its first sender.
const settingID = "sitesync.id"

// ErrIsSource: a cluster with a [sitesync] target takes no sync itself.
var ErrIsSource = errors.New("this cluster is a sync source (its [sitesync] target is set): a cluster cannot be source and target at once")

// Store is the slice of the repository the sync uses: the change log and the sync
// state, the settings its fingerprint is kept in, and the events it raises.
type Store interface {
	store.Sync
	SettingInit(ctx context.Context, key, value string, now time.Time) (string, error)
	EventAppend(ctx context.Context, p store.EventAppendParams) error
}

// Params configure a Service.
type Params struct {
	Store  Store
	Config config.SiteSync
	Log    *slog.Logger
	// Node is this node's id and Advertise its address (known once the node listens):
	// how the source names itself by default, and who events name.
	Node      string
	Advertise func() string
	Now       func() time.Time
	// Lag, if set, is told the sender's lag in seconds (tandem_sync_lag_seconds).
	Lag func(seconds float64)
	// Poll is how often a caught-up sender looks for changes. Default PollDefault.
	Poll time.Duration
	// Sealer is this node's secret sealer (nil, or returning nil: the node has not the
	// cluster's secret key): a sender opens secrets with it, a target seals them.
	Sealer func() *auth.Sealer
	// SecretSeen, if set, is told each secret value the sync opens (the log redactor).
	SecretSeen func(value string)
}

// Service is a node's part of the site sync: on a source, the sender (Run, while the
// node is primary) and on-demand full syncs; on a target, the receiver of batches and
// snapshots. Safe for concurrent use.
type Service struct {
	p    Params
	tr   *transport // nil: no [sitesync] target
	wake chan struct{}
	full sync.Mutex // one full sync at a time from this node

	mu sync.Mutex
	id string // this repository's fingerprint, once read
}

// New returns the service.
func New(p Params) *Service {
	p.Poll = cmp.Or(p.Poll, PollDefault)
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Lag == nil {
		p.Lag = func(float64) {}
	}
	if p.Sealer == nil {
		p.Sealer = func() *auth.Sealer { return nil }
	}
	if p.SecretSeen == nil {
		p.SecretSeen = func(string) {}
	}
	s := &Service{p: p, wake: make(chan struct{}, 1)}
	if p.Config.Enabled() {
		s.tr = newTransport(p.Config.Target, p.Config.Token, p.Config.CAPEM, p.Config.Timeout)
	}
	return s
}

// Wake makes the sender look at its state and the change log now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Fingerprint is this repository's sync id, made once by the first node to ask.
func (s *Service) Fingerprint(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id, err := s.p.Store.SettingInit(ctx, settingID, hex.EncodeToString(b[:]), s.p.Now())
	if err != nil {
		return "", fmt.Errorf("read the sync fingerprint: %w", err)
	}
	s.mu.Lock()
	s.id = id
	s.mu.Unlock()
	return id, nil
}

// source is how this cluster presents itself to the target.
func (s *Service) source(ctx context.Context) (Source, error) {
	fp, err := s.Fingerprint(ctx)
	if err != nil {
		return Source{}, err
	}
	subs := make([]Substitution, 0, len(s.p.Config.Substitute))
	for _, sub := range s.p.Config.Substitute {
		subs = append(subs, Substitution(sub))
	}
	name := s.p.Config.Name
	if name == "" {
		name = s.p.Node
		if s.p.Advertise != nil {
			name += " (" + s.p.Advertise() + ")"
		}
	}
	return Source{Fingerprint: fp, Name: name, Substitute: subs, StartAfterSync: s.p.Config.StartAfterSync}, nil
}

// event records a sync event; its failure is logged (the sync goes on without it).
// newEvent is an event of this node, now. Each is recorded by the write of the sender's
// state that it reports (SyncSourceSet, SyncSourcePause), in its transaction.
func (s *Service) newEvent(typ, msg string, data map[string]any) store.EventAppendParams {
	return store.EventAppendParams{Type: typ, Node: s.p.Node, Message: msg, Data: data, Now: s.p.Now()}
}

// event appends an event on its own, for what changed nothing in this repository (a
// full sync that left the recorded cursor where it was: the change is the target's).
func (s *Service) event(ctx context.Context, ev store.EventAppendParams) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.p.Store.EventAppend(ctx, ev); err != nil {
		s.p.Log.Warn("cannot record event", "type", ev.Type, "err", err)
	}
}

// sleep waits d or a wake-up; false when ctx ended.
func (s *Service) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-s.wake:
	}
	return true
}

// Status is the sender's state (on a source) and the target's role.
func (s *Service) Status(ctx context.Context) (Status, error) {
	var out Status
	t, err := s.p.Store.SyncTargetGet(ctx)
	if err != nil {
		return out, err
	}
	out.Target = targetState(t)
	out.Target.IsSource = s.tr != nil
	if s.tr == nil {
		return out, nil
	}
	st, err := s.p.Store.SyncSourceGet(ctx)
	if err != nil {
		return out, err
	}
	l, err := s.p.Store.ChangeLogState(ctx)
	if err != nil {
		return out, err
	}
	snd := &SenderState{Mode: s.p.Config.Mode, Targets: s.p.Config.Target, Target: st.Target, Paused: st.Paused, Failures: st.Failures,
		LastError: st.LastError, LastErrorAt: st.LastErrorAt, LastOKAt: st.LastOKAt, Cursor: st.Acked, Latest: l.Latest, LastChange: l.LatestAt}
	if st.Acked < l.Latest {
		snd.LagChanges = l.Latest - st.Acked
		if next, err := s.p.Store.ChangeList(ctx, store.ChangeListParams{After: st.Acked, Limit: 1}); err == nil && len(next) > 0 {
			snd.LagSeconds = max(l.Now.Sub(next[0].At).Seconds(), 0)
		}
	}
	out.Sender = snd
	return out, nil
}

// Pause stops automatic sync until Resume (stored: every primary keeps to it).
func (s *Service) Pause(ctx context.Context, by string) error {
	if s.tr == nil {
		return ErrNotSource
	}
	if err := s.p.Store.SyncSourcePause(ctx, true, s.newEvent("sync.paused", "site sync paused by "+by, map[string]any{"by": by, "reason": "operator"})); err != nil {
		return err
	}
	s.Wake()
	return nil
}

// Resume resumes automatic sync and clears the count of failures.
func (s *Service) Resume(ctx context.Context, by string) error {
	if s.tr == nil {
		return ErrNotSource
	}
	if err := s.p.Store.SyncSourcePause(ctx, false, s.newEvent("sync.resumed", "site sync resumed by "+by, map[string]any{"by": by})); err != nil {
		return err
	}
	s.Wake()
	return nil
}

// errReread: the target's cursor is not where the sender thought; read it again.
var errReread = errors.New("the target's cursor moved")

// ErrNotSource: a sender's operation on a cluster without a [sitesync] target.
var ErrNotSource = errors.New("this cluster has no [sitesync] target: it is not a sync source")

// Promote ends this cluster's role as a sync target and resumes the jobs the sync held.
func (s *Service) Promote(ctx context.Context, a store.Audit) (PromoteResult, error) {
	t, resumed, err := s.p.Store.SyncPromote(ctx, store.SyncPromoteParams{Audit: a})
	if err != nil {
		return PromoteResult{}, err
	}
	return PromoteResult{Resumed: append([]string{}, resumed...), Target: targetState(t)}, nil
}

// FullSync sends this cluster's whole configuration to the target, which replaces its
// own with it in one transaction.
func (s *Service) FullSync(ctx context.Context) (FullResult, error) {
	return s.fullSync(ctx, nil)
}

// fullSync is FullSync with the target's transfer key when the caller has just read it
// (nil: read it here, if secrets are sent).
func (s *Service) fullSync(ctx context.Context, transferKey []byte) (FullResult, error) {
	if s.tr == nil {
		return FullResult{}, ErrNotSource
	}
	s.full.Lock()
	defer s.full.Unlock()
	start := time.Now()
	src, err := s.source(ctx)
	if err != nil {
		return FullResult{}, err
	}
	if t, err := s.p.Store.SyncTargetGet(ctx); err != nil {
		return FullResult{}, err
	} else if t.Active {
		return FullResult{}, fmt.Errorf("this cluster is itself the sync target of %s: promote it (tandem sync promote) before it syncs to another site", t.SourceName)
	}
	if s.p.Config.SyncSecrets && transferKey == nil { // the key secrets are sealed for
		var ts TargetState
		if _, err := s.tr.call(ctx, 1, RouteTarget, nil, &ts); err != nil {
			return FullResult{}, fmt.Errorf("read the target's transfer key: %w", err)
		}
		transferKey = ts.TransferKey
	}
	snap, err := s.p.Store.ConfigSnapshot(ctx)
	if err != nil {
		return FullResult{}, err
	}
	items, err := s.sendable(snap.Changes, transferKey)
	if err != nil {
		return FullResult{}, fmt.Errorf("full sync at sequence %d: %w", snap.Seq, err)
	}
	var ts TargetState
	server, err := s.tr.call(ctx, FullScale, RouteFull, Full{SyncSource: src, Seq: snap.Seq, Changes: items}, &ts)
	if err != nil {
		return FullResult{}, fmt.Errorf("full sync at sequence %d: %w", snap.Seq, err)
	}
	res := FullResult{Seq: snap.Seq, Items: len(items), Took: time.Since(start), Target: ts}
	s.p.Log.Info(fmt.Sprintf("full sync to %s: %d items at sequence %d in %s", server, res.Items, res.Seq, res.Took.Round(time.Millisecond)))
	ev := s.newEvent("sync.full", fmt.Sprintf("configuration fully synced to %s at sequence %d (%d items)", server, res.Seq, res.Items),
		map[string]any{"success": true, "seq": res.Seq, "items": res.Items, "target": server, "took_ms": res.Took.Milliseconds()})
	// Recorded with the cursor it moves; a cursor already there (or unreadable) leaves
	// nothing here to write it with.
	if st, err := s.p.Store.SyncSourceGet(ctx); err == nil && st.Acked < ts.Cursor {
		st.Acked, st.Target, st.LastOKAt = ts.Cursor, server, s.p.Now()
		if err := s.p.Store.SyncSourceSet(ctx, st, ev); err != nil {
			s.p.Log.Warn("cannot record the full sync's cursor", "err", err)
			s.event(ctx, ev) // the target's configuration was replaced all the same
		}
	} else {
		s.event(ctx, ev)
	}
	s.Wake()
	return res, nil
}

// Run is the primary's part, for its term: the change log's retention and, with a
// [sitesync] target in automatic mode, the sender. It returns when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.p.Lag(0) // the next primary reports the lag
	var pruned time.Time
	var carry *unrecorded
	for ctx.Err() == nil {
		if time.Since(pruned) >= PruneEvery {
			pruned = time.Now()
			s.prune(ctx)
		}
		if s.tr == nil || s.p.Config.Mode != config.SiteSyncModeAutomatic {
			if !s.sleep(ctx, time.Minute) {
				return nil
			}
			continue
		}
		st, err := s.p.Store.SyncSourceGet(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.p.Log.Warn("cannot read the sync sender's state", "err", err)
			}
			s.sleep(ctx, time.Second)
			continue
		}
		stored := st
		carry.onto(&st)
		carry = nil
		if st.Paused {
			s.p.Lag(s.lag(ctx, st.Acked))
			s.sleep(ctx, time.Second)
			continue
		}
		err = s.stream(ctx, &st)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errReread) {
			continue // another sender or a full sync moved the cursor: read it again
		}
		if err != nil {
			if !s.failed(ctx, &st, err) {
				carry = &unrecorded{read: stored, st: st}
			}
			wait := s.p.Config.Retry << min(max(st.Failures-1, 0), 12)
			s.sleep(ctx, min(wait, RetryMax))
		}
	}
	return nil
}

// unrecorded is a failure count the sender could not store: the next loop carries it
// over what it reads, so that the backoff still grows and max_failures still pauses the
// sender while its state cannot be written. It is carried only onto the state it was
// counted from: a resume or a full sync written meanwhile (from any node) wins.
type unrecorded struct {
	read store.SyncSource // what the failed loop read from the store
	st   store.SyncSource // its state after the failure
}

func (u *unrecorded) onto(st *store.SyncSource) {
	if u == nil || st.Paused || st.Failures != u.read.Failures || st.Acked != u.read.Acked || !st.LastErrorAt.Equal(u.read.LastErrorAt) {
		return
	}
	st.Failures, st.LastError, st.LastErrorAt = u.st.Failures, u.st.LastError, u.st.LastErrorAt
}

// prune applies the change log's retention.
func (s *Service) prune(ctx context.Context) {
	n, err := s.p.Store.ChangePrune(ctx, store.ChangePruneParams{Before: s.p.Now().Add(-s.p.Config.ChangeRetention), Keep: s.p.Config.ChangeKeep})
	switch {
	case err != nil && ctx.Err() == nil:
		s.p.Log.Warn("cannot apply the change log's retention", "err", err)
	case n > 0:
		s.p.Log.Info(fmt.Sprintf("change log: %d changes older than %s removed", n, s.p.Config.ChangeRetention))
	}
}

// lag is how long the oldest change the target has not acknowledged has waited.
func (s *Service) lag(ctx context.Context, acked int64) float64 {
	next, err := s.p.Store.ChangeList(ctx, store.ChangeListParams{After: acked, Limit: 1})
	if err != nil || len(next) == 0 {
		return 0
	}
	return max(s.p.Now().Sub(next[0].At).Seconds(), 0)
}

// stream follows the target's cursor: it sends the changes after it in batches until
// ctx ends, the sender is paused, or a batch fails.
func (s *Service) stream(ctx context.Context, st *store.SyncSource) error {
	src, err := s.source(ctx)
	if err != nil {
		return err
	}
	if t, err := s.p.Store.SyncTargetGet(ctx); err != nil {
		return err
	} else if t.Active {
		return fmt.Errorf("this cluster is itself the sync target of %s: it sends nothing until promoted", t.SourceName)
	}
	var ts TargetState
	server, err := s.tr.call(ctx, 1, RouteTarget, nil, &ts)
	if err != nil {
		return fmt.Errorf("read the target's cursor: %w", err)
	}
	switch {
	case ts.IsSource:
		return fmt.Errorf("target %s is itself a sync source: a cluster cannot be source and target at once", server)
	case !ts.Active && ts.Source == "" && ts.PromotedAt.IsZero():
		s.p.Log.Info(fmt.Sprintf("target %s was never synced: a full sync first", server))
		res, err := s.fullSync(ctx, ts.TransferKey)
		if err != nil {
			return err
		}
		ts = res.Target
	case !ts.Active:
		return fmt.Errorf("target %s was promoted at %s: it takes no changes until a full sync (tandem sync full) makes it a target again", server, ts.PromotedAt.Format(time.RFC3339))
	case ts.Source != src.Fingerprint:
		return fmt.Errorf("target %s takes changes from %s (fingerprint %s), not from this cluster (%s)", server, ts.SourceName, ts.Source, src.Fingerprint)
	}
	cursor := ts.Cursor
	s.acked(ctx, st, cursor, server)
	for ctx.Err() == nil {
		cs, err := s.p.Store.ChangeList(ctx, store.ChangeListParams{After: cursor, Limit: s.p.Config.Batch})
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			s.p.Lag(0)
			if !s.sleep(ctx, s.p.Poll) {
				return nil
			}
			continue
		}
		// An operator's pause (stored, from any node) stops the next batch.
		if cur, err := s.p.Store.SyncSourceGet(ctx); err != nil {
			return err
		} else if cur.Paused {
			return nil
		}
		if cs[0].Seq > cursor+1 {
			return fmt.Errorf("the target's cursor %d is older than the change log's retention (oldest kept: %d): a full sync is needed (tandem sync full)", cursor, cs[0].Seq)
		}
		s.p.Lag(max(s.p.Now().Sub(cs[0].At).Seconds(), 0))
		sent, err := s.sendable(cs, ts.TransferKey)
		if err != nil {
			return err
		}
		b := Batch{SyncSource: src, From: cursor, To: cs[len(cs)-1].Seq, Changes: sent}
		ts = TargetState{} // each answer whole: a node without the key gives none
		server, err = s.tr.call(ctx, 1, RouteBatch, b, &ts)
		var re *RemoteError
		if errors.As(err, &re) && re.Field == FieldCursor {
			s.p.Log.Debug("the target's cursor moved", "batch", fmt.Sprintf("%d..%d", b.From, b.To), "err", err)
			return errReread
		}
		if err != nil {
			return fmt.Errorf("batch %d..%d: %w", b.From, b.To, err)
		}
		cursor = ts.Cursor
		s.acked(ctx, st, cursor, server)
	}
	return nil
}

// acked records a batch's success, and the recovery if batches had failed.
func (s *Service) acked(ctx context.Context, st *store.SyncSource, cursor int64, server string) {
	// Recovered: the last thing recorded was a failure (resume clears the count, not that).
	recovered := !st.LastErrorAt.IsZero() && !st.LastErrorAt.Before(st.LastOKAt)
	if st.Acked == cursor && !recovered && st.Target == server {
		return
	}
	failed := st.Failures
	st.Acked, st.Target, st.Failures, st.LastOKAt = cursor, server, 0, s.p.Now()
	var evs []store.EventAppendParams
	if recovered {
		evs = append(evs, s.newEvent("sync.succeeded", fmt.Sprintf("site sync to %s recovered after %d failures", server, failed),
			map[string]any{"success": true, "cursor": cursor, "target": server, "failures": failed}))
	}
	if err := s.p.Store.SyncSourceSet(ctx, *st, evs...); err != nil {
		if ctx.Err() == nil {
			s.p.Log.Warn("cannot record the sync cursor", "err", err)
		}
		return
	}
	if recovered {
		s.p.Log.Info(fmt.Sprintf("site sync to %s recovered (cursor %d)", server, cursor))
	}
}

// failed records a failed batch: sync.failed, and sync.paused after max_failures. It
// reports whether the failure count was stored.
func (s *Service) failed(ctx context.Context, st *store.SyncSource, err error) bool {
	st.Failures++
	st.LastError, st.LastErrorAt = err.Error(), s.p.Now()
	target := st.Target
	var re *RemoteError
	if errors.As(err, &re) {
		target = re.Server
	}
	s.p.Log.Warn("site sync failed", "failures", st.Failures, "cursor", st.Acked, "err", err)
	setErr := s.p.Store.SyncSourceSet(ctx, *st, s.newEvent("sync.failed", fmt.Sprintf("site sync failed (%d in a row): %v", st.Failures, err),
		map[string]any{"success": false, "error": err.Error(), "cursor": st.Acked, "target": target, "failures": st.Failures}))
	if setErr != nil {
		s.p.Log.Warn("cannot record the sync failure", "err", setErr)
	}
	if st.Failures >= s.p.Config.MaxFailures {
		if e := s.p.Store.SyncSourcePause(ctx, true, s.newEvent("sync.paused", fmt.Sprintf("site sync paused after %d consecutive failures", st.Failures),
			map[string]any{"reason": "failures", "failures": st.Failures, "error": err.Error(), "cursor": st.Acked, "target": target})); e != nil {
			s.p.Log.Warn("cannot pause the site sync", "err", e)
			return setErr == nil
		}
		st.Paused = true
		s.p.Log.Warn(fmt.Sprintf("site sync paused after %d consecutive failures: tandem sync resume resumes it", st.Failures))
	}
	return setErr == nil
}

// sendable are the changes the target gets: jobs, rules and settings; users and API
// tokens with sync_users; secrets with sync_secrets, each opened here and sealed for
// the target's transfer key. The cursor moves past the others all the same.
func (s *Service) sendable(cs []store.Change, transferKey []byte) ([]Change, error) {
	out := make([]Change, 0, len(cs))
	for _, c := range cs {
		def := c.Def
		switch c.Entity {
		case store.EntitySecret:
			if !s.p.Config.SyncSecrets {
				continue
			}
			if c.Op != store.OpDelete {
				var err error
				if def, err = s.transfer(c, transferKey); err != nil {
					return nil, &ChangeError{Seq: c.Seq, Entity: c.Entity, Key: c.Key, Err: err}
				}
			}
		case store.EntityUser, store.EntityToken:
			if !s.p.Config.SyncUsers {
				continue
			}
		}
		out = append(out, Change{Seq: c.Seq, At: c.At, Entity: c.Entity, Key: c.Key, Op: c.Op, Def: def})
	}
	return out, nil
}

// transfer is a secret's change as it is sent: opened with this cluster's key, its value
// sealed for the target's.
func (s *Service) transfer(c store.Change, transferKey []byte) ([]byte, error) {
	sl := s.p.Sealer()
	if sl == nil {
		return nil, fmt.Errorf("%w: it cannot send secrets (sitesync.sync_secrets)", auth.ErrNoSecretKey)
	}
	if len(transferKey) == 0 {
		return nil, errors.New("the target's node has not its cluster's secret key (secret_key_file): it takes no secrets (sitesync.sync_secrets)")
	}
	var sc store.ChangeSecret
	if err := json.Unmarshal(c.Def, &sc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	v, err := sl.Open(c.Key, sc.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w (set it again with tandem secret set, or turn sitesync.sync_secrets off)", err)
	}
	s.p.SecretSeen(v)
	sealed, err := auth.SealTransfer(transferKey, c.Key, v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wire.SyncSecret{Version: sc.Version, Sealed: sealed})
}
