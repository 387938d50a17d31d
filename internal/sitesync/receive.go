package sitesync

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/notify"
	"github.com/tandemhq/tandem/internal/store"
)

// The target's side: what the API's sync routes call.

// TargetState reads this repository's role as a target.
func (s *Service) TargetState(ctx context.Context) (TargetState, error) {
	t, err := s.p.Store.SyncTargetGet(ctx)
	if err != nil {
		return TargetState{}, err
	}
	return s.state(t), nil
}

// state is what the target answers a source: its role, whether it is a source itself,
// and the key to seal secrets for.
func (s *Service) state(t store.SyncTarget) TargetState {
	ts := targetState(t)
	ts.IsSource = s.tr != nil
	if sl := s.p.Sealer(); sl != nil {
		ts.TransferKey = sl.TransferKey()
	}
	return ts
}

// ApplyBatch applies a source's batch: each change substituted, checked and, unless
// the source starts them, its job held paused; then stored with the cursor in one
// transaction.
func (s *Service) ApplyBatch(ctx context.Context, b Batch) (TargetState, error) {
	if s.tr != nil {
		return TargetState{}, ErrIsSource
	}
	cs, err := prepare(b.SyncSource, b.Changes, s.p.Sealer(), s.p.SecretSeen)
	if err != nil {
		return TargetState{}, err
	}
	t, err := s.p.Store.SyncApply(ctx, store.SyncApplyParams{Source: b.Fingerprint, SourceName: b.Name, From: b.From, To: b.To, Changes: cs, Now: s.p.Now()})
	if err != nil {
		return TargetState{}, err
	}
	return s.state(t), nil
}

// ApplyFull replaces this repository's configuration with a source's snapshot.
func (s *Service) ApplyFull(ctx context.Context, f Full) (TargetState, error) {
	if s.tr != nil {
		return TargetState{}, ErrIsSource
	}
	cs, err := prepare(f.SyncSource, f.Changes, s.p.Sealer(), s.p.SecretSeen)
	if err != nil {
		return TargetState{}, err
	}
	t, err := s.p.Store.SyncReplace(ctx, store.SyncReplaceParams{Source: f.Fingerprint, SourceName: f.Name, Seq: f.Seq, Changes: cs, Now: s.p.Now()})
	if err != nil {
		return TargetState{}, err
	}
	s.p.Log.Info(fmt.Sprintf("configuration replaced by a full sync from %s: %d items at sequence %d", f.Name, len(cs), f.Seq))
	return s.state(t), nil
}

// ChangeError is a change that cannot be sent (the sender cannot open a secret) or
// that the target cannot apply.
type ChangeError struct {
	Seq         int64
	Entity, Key string
	Err         error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("change %d (%s %s): %v", e.Seq, e.Entity, e.Key, e.Err)
}

func (e *ChangeError) Unwrap() error { return e.Err }

// prepare turns a source's changes into what the target stores: addresses
// substituted, definitions checked, jobs held paused unless the source starts them,
// secrets opened from their transfer and sealed with this cluster's key (sl; nil: this
// node has not the key; seen is told each value).
func prepare(src Source, in []Change, sl *auth.Sealer, seen func(string)) ([]store.Change, error) {
	out := make([]store.Change, 0, len(in))
	for _, c := range in {
		sc := store.Change{Seq: c.Seq, At: c.At, Entity: c.Entity, Key: c.Key, Op: c.Op, Def: c.Def}
		bad := func(err error) error { return &ChangeError{Seq: c.Seq, Entity: c.Entity, Key: c.Key, Err: err} }
		switch {
		case c.Entity == store.EntitySecret && c.Op == store.OpApply:
			var w wire.SyncSecret
			if err := json.Unmarshal(c.Def, &w); err != nil || len(w.Sealed) == 0 {
				return nil, bad(fmt.Errorf("decode: want the value sealed for this site's transfer key (%v)", err))
			}
			if sl == nil {
				return nil, bad(fmt.Errorf("%w: it cannot take synced secrets", auth.ErrNoSecretKey))
			}
			v, err := sl.OpenTransfer(c.Key, w.Sealed)
			if err != nil {
				return nil, bad(err)
			}
			seen(v)
			ct, err := sl.Seal(c.Key, v)
			if err != nil {
				return nil, bad(err)
			}
			if sc.Def, err = json.Marshal(store.ChangeSecret{Version: w.Version, Ciphertext: ct}); err != nil {
				return nil, bad(err)
			}
		case c.Op == store.OpDelete || c.Entity == store.EntitySetting || c.Entity == store.EntityUser || c.Entity == store.EntityToken:
		case c.Entity == store.EntityJob:
			def, rw, err := Substitute(c.Def, src.Substitute)
			if err != nil {
				return nil, bad(err)
			}
			var j store.ChangeJob
			if err := json.Unmarshal(def, &j); err != nil {
				return nil, bad(fmt.Errorf("decode: %w", err))
			}
			check := j.Spec
			if err := check.Validate(); err != nil {
				return nil, bad(err)
			}
			j.Held = false
			if !j.Paused && !src.StartAfterSync {
				j.Paused, j.Held = true, true
			}
			if sc.Def, err = json.Marshal(j); err != nil {
				return nil, bad(err)
			}
			sc.Rewritten = rw
		case c.Entity == store.EntityRule:
			var r store.ChangeRule
			if err := json.Unmarshal(c.Def, &r); err != nil {
				return nil, bad(fmt.Errorf("decode: %w", err))
			}
			spec, rw, err := Substitute(r.Spec, src.Substitute)
			if err != nil {
				return nil, bad(err)
			}
			if _, err := notify.Decode(spec); err != nil {
				return nil, bad(err)
			}
			if sc.Def, err = json.Marshal(store.ChangeRule{Spec: spec}); err != nil {
				return nil, bad(err)
			}
			sc.Rewritten = rw
		default:
			return nil, bad(fmt.Errorf("unknown entity %q", c.Entity))
		}
		out = append(out, sc)
	}
	return out, nil
}
