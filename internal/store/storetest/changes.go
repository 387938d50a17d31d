package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// changes lists the whole change log.
func changes(t *testing.T, s store.Store) []store.Change {
	t.Helper()
	var out []store.Change
	after := int64(0)
	for {
		page := must[[]store.Change](t)(s.ChangeList(ctx(t), store.ChangeListParams{After: after, Limit: 100}))
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// summary is "op entity key" of each change.
func summary(cs []store.Change) string {
	var b []string
	for _, c := range cs {
		b = append(b, c.Op+" "+c.Entity+" "+c.Key)
	}
	return strings.Join(b, ", ")
}

// gapFree fails unless the sequences are consecutive.
func gapFree(t *testing.T, cs []store.Change) {
	t.Helper()
	for i := 1; i < len(cs); i++ {
		if cs[i].Seq != cs[i-1].Seq+1 {
			t.Fatalf("sequence %d follows %d", cs[i].Seq, cs[i-1].Seq)
		}
	}
}

// Every configuration change appends one change per entity, in its transaction, with
// gap-free sequences; ConfigVersion is the latest. A refused change appends nothing,
// nor do settings that are not configuration, nor a setting set to its value.
func testChangeLog(t *testing.T, s store.Store) {
	v0 := must[int64](t)(s.ConfigVersion(ctx(t)))
	apply(t, s, spec("a", "@every 1m"), spec("b"))
	apply(t, s, spec("a", "@every 2m"))
	if _, err := s.JobApply(ctx(t), store.JobApplyParams{Now: t0, Jobs: []store.JobDef{def(spec("c")), def(spec("c"))}}); err == nil {
		t.Fatal("a job twice applied")
	}
	must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "a", Paused: true, Now: t0}))
	must[store.Job](t)(s.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "a", Paused: false, Now: t0}))
	must[error](t)(nil, s.JobDelete(ctx(t), store.JobDeleteParams{Name: "b"}))
	must[[]store.RuleApplyResult](t)(s.RuleApply(ctx(t), store.RuleApplyParams{Now: t0, Rules: []store.RuleDef{{Name: "r", Spec: []byte(`{"on":["run.failed"]}`)}}}))
	must[error](t)(nil, s.RuleDelete(ctx(t), "r"))
	must[error](t)(nil, s.SettingSet(ctx(t), store.SettingDispatchAlgorithm, "min-load", t0))
	must[error](t)(nil, s.SettingSet(ctx(t), store.SettingDispatchAlgorithm, "min-load", t0))
	must[error](t)(nil, s.SettingSet(ctx(t), store.SettingNodeWeightPrefix+"n1", "2", t0))

	cs := changes(t, s)
	want := "apply job a, apply job b, apply job a, pause job a, resume job a, delete job b, apply rule r, delete rule r, set setting dispatch.algorithm"
	if got := summary(cs); got != want {
		t.Fatalf("change log:\n got %s\nwant %s", got, want)
	}
	gapFree(t, cs)
	if cs[0].Seq != v0+1 {
		t.Fatalf("first sequence %d, want %d (one above the config version before)", cs[0].Seq, v0+1)
	}
	if v := must[int64](t)(s.ConfigVersion(ctx(t))); v != cs[len(cs)-1].Seq {
		t.Fatalf("config version %d, latest change %d", v, cs[len(cs)-1].Seq)
	}
	var j store.ChangeJob
	if err := json.Unmarshal(cs[3].Def, &j); err != nil || j.Spec.Name != "a" || !j.Paused || len(j.Schedules) != 1 || j.Schedules[0].Expr != "@every 2m" {
		t.Fatalf("pause's definition %s: %+v %v", cs[3].Def, j, err)
	}
	if cs[5].Def != nil || cs[0].At.IsZero() {
		t.Fatalf("delete's definition %s, at %s", cs[5].Def, cs[0].At)
	}
	var r store.ChangeRule
	if err := json.Unmarshal(cs[6].Def, &r); err != nil || string(r.Spec) != `{"on":["run.failed"]}` {
		t.Fatalf("rule's definition %s", cs[6].Def)
	}
	l := must[store.ChangeLog](t)(s.ChangeLogState(ctx(t)))
	if l.Oldest != cs[0].Seq || l.Latest != cs[len(cs)-1].Seq || l.LatestAt.IsZero() || l.Now.Before(l.LatestAt.Add(-time.Minute)) {
		t.Fatalf("change log state %+v", l)
	}
	// Retention keeps the newest rows whatever their age.
	if n := must[int](t)(s.ChangePrune(ctx(t), store.ChangePruneParams{Before: l.Now.Add(time.Hour), Keep: 3})); n != len(cs)-3 {
		t.Fatalf("pruned %d, want %d", n, len(cs)-3)
	}
	if l2 := must[store.ChangeLog](t)(s.ChangeLogState(ctx(t))); l2.Oldest != l.Latest-2 || l2.Latest != l.Latest {
		t.Fatalf("after pruning: %+v", l2)
	}
	if n := must[int](t)(s.ChangePrune(ctx(t), store.ChangePruneParams{Before: l.Now.Add(-time.Hour)})); n != 0 {
		t.Fatalf("pruned %d younger than the retention", n)
	}
}

// Concurrent changes get gap-free sequences that commit in order: a follower that reads
// after its cursor while they commit sees every change, once.
func testChangeLogConcurrent(t *testing.T, s store.Store) {
	start := must[int64](t)(s.ConfigVersion(ctx(t)))
	const writers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.JobApply(ctx(t), store.JobApplyParams{Now: t0, Jobs: []store.JobDef{def(spec(fmt.Sprintf("w%d-%d", w, i)))}})
				errs <- err
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []store.Change
	cursor := start
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		page := must[[]store.Change](t)(s.ChangeList(ctx(t), store.ChangeListParams{After: cursor}))
		seen = append(seen, page...)
		if len(page) > 0 {
			cursor = page[len(page)-1].Seq
		}
		if finished && len(page) == 0 {
			break
		}
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("the follower saw %d changes, want %d", len(seen), writers*each)
	}
	gapFree(t, seen)
	if seen[0].Seq != start+1 {
		t.Fatalf("first %d, want %d", seen[0].Seq, start+1)
	}
}

// target makes a store the sync target of src by a full sync of its snapshot.
func syncFull(t *testing.T, src, dst store.Store, source string) store.SyncTarget {
	t.Helper()
	snap := must[store.Snapshot](t)(src.ConfigSnapshot(ctx(t)))
	return must[store.SyncTarget](t)(dst.SyncReplace(ctx(t), store.SyncReplaceParams{Source: source, SourceName: source + " prod:8200",
		Seq: snap.Seq, Changes: snap.Changes, Now: t0}))
}

// held marks jobs' definitions paused and held, as a target that does not start them
// applies them.
func held(t *testing.T, cs []store.Change) []store.Change {
	out := make([]store.Change, len(cs))
	for i, c := range cs {
		out[i] = c
		if c.Entity != store.EntityJob || c.Def == nil {
			continue
		}
		var j store.ChangeJob
		must[error](t)(nil, json.Unmarshal(c.Def, &j))
		if !j.Paused {
			j.Paused, j.Held = true, true
		}
		out[i].Def = must[[]byte](t)(json.Marshal(j))
	}
	return out
}

// A full sync makes a store the target of its source with the source's configuration;
// batches then apply in order with the cursor, once; local changes, a second source and
// batches that leave a gap are refused; a promotion ends the role and resumes the jobs
// the sync held.
func testSyncTarget(t *testing.T, open Open) {
	src, dst := open(t), open(t)
	if _, err := dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: 0, To: 1}); !errors.Is(err, store.ErrNotTarget) {
		t.Fatalf("a batch before a full sync: %v, want ErrNotTarget", err)
	}
	apply(t, src, spec("a", "@every 1m"), spec("b"))
	must[store.Job](t)(src.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "b", Paused: true, Now: t0}))
	must[[]store.RuleApplyResult](t)(src.RuleApply(ctx(t), store.RuleApplyParams{Now: t0, Rules: []store.RuleDef{{Name: "r", Spec: []byte(`{"on":["sync.failed"]}`)}}}))
	apply(t, dst, spec("stale"))
	snap := must[store.Snapshot](t)(src.ConfigSnapshot(ctx(t)))
	if snap.Seq != must[int64](t)(src.ConfigVersion(ctx(t))) || summary(snap.Changes) != "apply job a, apply job b, apply rule r" {
		t.Fatalf("snapshot at %d: %s", snap.Seq, summary(snap.Changes))
	}
	tg := must[store.SyncTarget](t)(dst.SyncReplace(ctx(t), store.SyncReplaceParams{Source: "A", SourceName: "prod", Seq: snap.Seq, Changes: held(t, snap.Changes), Now: t0}))
	if !tg.Active || tg.Source != "A" || tg.Cursor != snap.Seq || tg.AppliedAt.IsZero() {
		t.Fatalf("target after a full sync: %+v", tg)
	}
	jobs := must[[]store.Job](t)(dst.JobList(ctx(t)))
	if len(jobs) != 2 || jobs[0].Name != "a" || !jobs[0].Paused || !jobs[1].Paused || len(jobs[0].Schedules) != 1 {
		t.Fatalf("target's jobs: %+v", jobs)
	}
	if _, err := dst.RuleGet(ctx(t), "r"); err != nil {
		t.Fatal(err)
	}
	// Local changes are refused, naming the source.
	_, err := dst.JobApply(ctx(t), store.JobApplyParams{Now: t0, Jobs: []store.JobDef{def(spec("local"))}})
	var te *store.SyncTargetError
	if !errors.As(err, &te) || !errors.Is(err, store.ErrSyncTarget) || te.Source != "prod" {
		t.Fatalf("a local apply on a target: %v, want a SyncTargetError naming prod", err)
	}
	if err := dst.JobDelete(ctx(t), store.JobDeleteParams{Name: "a"}); !errors.Is(err, store.ErrSyncTarget) {
		t.Fatalf("a local delete: %v", err)
	}
	if _, err := dst.JobSetPaused(ctx(t), store.JobSetPausedParams{Name: "a", Now: t0}); !errors.Is(err, store.ErrSyncTarget) {
		t.Fatalf("a local resume: %v", err)
	}
	if err := dst.RuleDelete(ctx(t), "r"); !errors.Is(err, store.ErrSyncTarget) {
		t.Fatalf("a local rule delete: %v", err)
	}
	// Streaming: changes after the snapshot, in batches.
	from := snap.Seq
	apply(t, src, spec("a", "@every 5m"), spec("c"))
	must[error](t)(nil, src.JobDelete(ctx(t), store.JobDeleteParams{Name: "b"}))
	must[error](t)(nil, src.RuleDelete(ctx(t), "r"))
	must[error](t)(nil, src.SettingSet(ctx(t), store.SettingDispatchAlgorithm, "random", t0))
	cs := must[[]store.Change](t)(src.ChangeList(ctx(t), store.ChangeListParams{After: from}))
	to := cs[len(cs)-1].Seq
	if _, err := dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "B", SourceName: "other", From: from, To: to, Changes: cs, Now: t0}); !errors.Is(err, store.ErrSyncSource) {
		t.Fatalf("a second source: %v, want ErrSyncSource", err)
	}
	if _, err := dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from + 1, To: to, Changes: cs[1:], Now: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a batch with a gap: %v, want ErrConflict", err)
	}
	if _, err := dst.SyncReplace(ctx(t), store.SyncReplaceParams{Source: "B", SourceName: "other", Seq: 1, Now: t0}); !errors.Is(err, store.ErrSyncSource) {
		t.Fatalf("a full sync from a second source: %v, want ErrSyncSource", err)
	}
	first := held(t, cs[:2])
	tg = must[store.SyncTarget](t)(dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from, To: cs[1].Seq, Changes: first, Now: t0}))
	if tg.Cursor != cs[1].Seq {
		t.Fatalf("cursor %d, want %d", tg.Cursor, cs[1].Seq)
	}
	before := len(changes(t, dst))
	// The same batch again, and one overlapping it, apply nothing twice.
	must[store.SyncTarget](t)(dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from, To: cs[1].Seq, Changes: first, Now: t0}))
	if n := len(changes(t, dst)); n != before {
		t.Fatalf("a batch sent twice appended %d changes", n-before)
	}
	tg = must[store.SyncTarget](t)(dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from, To: to, Changes: held(t, cs), Now: t0}))
	if tg.Cursor != to {
		t.Fatalf("cursor %d, want %d", tg.Cursor, to)
	}
	jobs = must[[]store.Job](t)(dst.JobList(ctx(t)))
	if len(jobs) != 2 || jobs[0].Name != "a" || jobs[0].Schedules[0].Expr != "@every 5m" || jobs[1].Name != "c" || !jobs[1].Paused {
		t.Fatalf("target's jobs after streaming: %+v", jobs)
	}
	if _, err := dst.RuleGet(ctx(t), "r"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rule deleted on the source: %v", err)
	}
	if v := must[string](t)(dst.SettingGet(ctx(t), store.SettingDispatchAlgorithm)); v != "random" {
		t.Fatalf("setting %q", v)
	}
	// The target's change log mirrors the source's, each with the source's sequence.
	mine := changes(t, dst)
	var mirrored []store.Change
	for _, c := range mine {
		if c.SourceSeq > from {
			mirrored = append(mirrored, c)
		}
	}
	if summary(mirrored) != summary(cs) || mirrored[0].SourceSeq != cs[0].Seq {
		t.Fatalf("target's log %s, source's %s", summary(mirrored), summary(cs))
	}
	// Promotion: the role ends; the held jobs resume; local changes are allowed again.
	tg, resumed, err := dst.SyncPromote(ctx(t), store.SyncPromoteParams{Audit: store.Audit{By: "user admin", Now: t0}})
	if err != nil || tg.Active || tg.PromotedAt.IsZero() || strings.Join(resumed, ",") != "a,c" {
		t.Fatalf("promote: %+v %v %v", tg, resumed, err)
	}
	for _, j := range must[[]store.Job](t)(dst.JobList(ctx(t))) {
		if j.Paused {
			t.Fatalf("job %s still paused after promotion", j.Name)
		}
	}
	apply(t, dst, spec("local"))
	if _, err := dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: to, To: to + 1, Now: t0}); !errors.Is(err, store.ErrNotTarget) {
		t.Fatalf("a batch after promotion: %v, want ErrNotTarget", err)
	}
	if _, _, err := dst.SyncPromote(ctx(t), store.SyncPromoteParams{Audit: store.Audit{By: "x", Now: t0}}); !errors.Is(err, store.ErrNotTarget) {
		t.Fatalf("promote twice: %v", err)
	}
	// Failback: the promoted cluster is made a target again by another source's full sync.
	if tg := syncFull(t, src, dst, "B"); !tg.Active || tg.Source != "B" {
		t.Fatalf("full sync after promotion: %+v", tg)
	}
}

// A full sync that fails in the middle leaves the target as it was.
func testSyncReplaceAllOrNone(t *testing.T, open Open) {
	src, dst := open(t), open(t)
	apply(t, src, spec("a"), spec("b"))
	apply(t, dst, spec("keep"))
	before := summary(changes(t, dst))
	snap := must[store.Snapshot](t)(src.ConfigSnapshot(ctx(t)))
	bad := append(snap.Changes, store.Change{Entity: "bogus", Key: "x", Op: store.OpApply, Def: []byte(`{}`)})
	if _, err := dst.SyncReplace(ctx(t), store.SyncReplaceParams{Source: "A", SourceName: "prod", Seq: snap.Seq, Changes: bad, Now: t0}); err == nil {
		t.Fatal("a snapshot with a bad change applied")
	}
	jobs := must[[]store.Job](t)(dst.JobList(ctx(t)))
	if len(jobs) != 1 || jobs[0].Name != "keep" {
		t.Fatalf("target's jobs after a failed full sync: %+v", jobs)
	}
	if tg := must[store.SyncTarget](t)(dst.SyncTargetGet(ctx(t))); tg.Active || tg.Source != "" || tg.Cursor != 0 {
		t.Fatalf("target after a failed full sync: %+v", tg)
	}
	if got := summary(changes(t, dst)); got != before {
		t.Fatalf("target's change log %s, was %s", got, before)
	}
	// The same snapshot without the bad change replaces everything.
	syncFull(t, src, dst, "A")
	if jobs := must[[]store.Job](t)(dst.JobList(ctx(t))); len(jobs) != 2 || jobs[0].Name != "a" || jobs[1].Name != "b" {
		t.Fatalf("target's jobs after a full sync: %+v", jobs)
	}
}

// The sender's state is stored and read back.
func testSyncSource(t *testing.T, s store.Store) {
	st := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t)))
	if st.Paused || st.Failures != 0 || st.Acked != 0 {
		t.Fatalf("initial sender state %+v", st)
	}
	want := store.SyncSource{Paused: true, Failures: 5, LastError: "connection refused", LastErrorAt: t0, LastOKAt: t0.Add(-time.Minute), Acked: 42, Target: "https://dr-a:8200"}
	must[error](t)(nil, s.SyncSourceSet(ctx(t), want))
	if got := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t))); got.Paused || got.Failures != 5 {
		t.Fatalf("SyncSourceSet set paused: %+v", got)
	}
	must[error](t)(nil, s.SyncSourcePause(ctx(t), true))
	must[error](t)(nil, s.SyncSourceSet(ctx(t), want))
	got := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t)))
	if !got.LastErrorAt.Equal(want.LastErrorAt) || !got.LastOKAt.Equal(want.LastOKAt) {
		t.Fatalf("times %+v", got)
	}
	got.LastErrorAt, got.LastOKAt = want.LastErrorAt, want.LastOKAt
	if got != want {
		t.Fatalf("sender state %+v, want %+v", got, want)
	}
	must[error](t)(nil, s.SyncSourcePause(ctx(t), false))
	if got := must[store.SyncSource](t)(s.SyncSourceGet(ctx(t))); got.Paused || got.Failures != 0 || got.Acked != 42 {
		t.Fatalf("resumed: %+v", got)
	}
}

// Users, API tokens and secrets are logged (login sessions are not); a target applies
// users and tokens by name.
func testChangeLogAuth(t *testing.T, open Open) {
	src, dst := open(t), open(t)
	a := store.Audit{By: "user admin", Now: t0}
	from := must[int64](t)(src.ConfigVersion(ctx(t)))
	must[store.User](t)(src.UserAdd(ctx(t), store.UserAddParams{Name: "alice", Role: "operator", Hash: "h1", Audit: a}))
	must[store.Token](t)(src.TokenCreate(ctx(t), store.TokenCreateParams{Name: "ci", Kind: store.TokenAPI, Role: "viewer", Hash: "tokhash", Audit: a}))
	must[store.Token](t)(src.TokenCreate(ctx(t), store.TokenCreateParams{Name: "session-1", Kind: store.TokenSession, Role: "operator", User: "alice", Hash: "sesshash", Audit: a}))
	must[error](t)(nil, src.UserSetPassword(ctx(t), store.UserSetPasswordParams{Name: "alice", Hash: "h2", Audit: a}))
	must[int](t)(src.SecretSet(ctx(t), store.SecretSetParams{Name: "db", Ciphertext: []byte{1, 2, 3}, Audit: a}))
	must[error](t)(nil, src.SecretDelete(ctx(t), store.SecretDeleteParams{Name: "db", Audit: a}))
	cs := must[[]store.Change](t)(src.ChangeList(ctx(t), store.ChangeListParams{After: from}))
	if got, want := summary(cs), "apply user alice, apply token ci, apply user alice, apply secret db, delete secret db"; got != want {
		t.Fatalf("change log:\n got %s\nwant %s", got, want)
	}
	var u store.ChangeUser
	if err := json.Unmarshal(cs[2].Def, &u); err != nil || u.Hash != "h2" || u.Role != "operator" {
		t.Fatalf("password change's definition %s", cs[2].Def)
	}
	syncFull(t, src, dst, "A")
	if got := must[store.User](t)(dst.UserGet(ctx(t), "alice")); got.Hash != "h2" {
		t.Fatalf("target's user %+v", got)
	}
	if got := must[store.Token](t)(dst.TokenByHash(ctx(t), "tokhash")); got.Name != "ci" || got.Role != "viewer" {
		t.Fatalf("target's token %+v", got)
	}
	if _, err := dst.TokenByHash(ctx(t), "sesshash"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a login session was synced: %v", err)
	}
	// Streamed: revoke and delete.
	from = must[int64](t)(src.ConfigVersion(ctx(t)))
	must[error](t)(nil, src.TokenRevoke(ctx(t), store.TokenRevokeParams{Name: "ci", Audit: a}))
	must[error](t)(nil, src.UserDelete(ctx(t), store.UserDeleteParams{Name: "alice", Audit: a}))
	cs = must[[]store.Change](t)(src.ChangeList(ctx(t), store.ChangeListParams{After: from}))
	must[store.SyncTarget](t)(dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from, To: cs[len(cs)-1].Seq, Changes: cs, Now: t0}))
	if _, err := dst.UserGet(ctx(t), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted user on the target: %v", err)
	}
	if _, err := dst.TokenByHash(ctx(t), "tokhash"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token on the target: %v", err)
	}
}

// A target applies secrets by name, as the receiver sealed them; a full sync deletes
// the users, tokens and secrets the sync brought that its snapshot no longer has, and
// keeps the target's own.
func testSyncSecretsAndOwnItems(t *testing.T, open Open) {
	src, dst := open(t), open(t)
	a := store.Audit{By: "user admin", Now: t0}
	must[store.User](t)(src.UserAdd(ctx(t), store.UserAddParams{Name: "bob", Role: "operator", Hash: "hb", Audit: a}))
	must[store.Token](t)(src.TokenCreate(ctx(t), store.TokenCreateParams{Name: "ci", Kind: store.TokenAPI, Role: "viewer", Hash: "tokhash", Audit: a}))
	must[int](t)(src.SecretSet(ctx(t), store.SecretSetParams{Name: "db", Ciphertext: []byte{9, 9}, Audit: a}))
	// The target's own: an admin, the source's sync token, a secret.
	must[store.User](t)(dst.UserAdd(ctx(t), store.UserAddParams{Name: "dradmin", Role: "admin", Hash: "hd", Audit: a}))
	must[store.Token](t)(dst.TokenCreate(ctx(t), store.TokenCreateParams{Name: "from-prod", Kind: store.TokenAPI, Role: "sync", Hash: "synchash", Audit: a}))
	must[int](t)(dst.SecretSet(ctx(t), store.SecretSetParams{Name: "local", Ciphertext: []byte{1}, Audit: a}))

	snap := must[store.Snapshot](t)(src.ConfigSnapshot(ctx(t)))
	var sc store.ChangeSecret
	for _, c := range snap.Changes {
		if c.Entity == store.EntitySecret {
			if err := json.Unmarshal(c.Def, &sc); err != nil || c.Key != "db" || sc.Version != 1 || !bytes.Equal(sc.Ciphertext, []byte{9, 9}) {
				t.Fatalf("snapshot's secret %s %s", c.Key, c.Def)
			}
		}
	}
	if sc.Version == 0 {
		t.Fatalf("the snapshot has no secret: %s", summary(snap.Changes))
	}
	syncFull(t, src, dst, "A")
	if got := must[store.Secret](t)(dst.SecretGet(ctx(t), "db")); !bytes.Equal(got.Ciphertext, []byte{9, 9}) {
		t.Fatalf("target's secret %+v", got)
	}
	// Streamed: a new version, as the receiver sealed it.
	from := must[int64](t)(src.ConfigVersion(ctx(t)))
	must[int](t)(src.SecretSet(ctx(t), store.SecretSetParams{Name: "db", Ciphertext: []byte{7}, Audit: a}))
	cs := must[[]store.Change](t)(src.ChangeList(ctx(t), store.ChangeListParams{After: from}))
	cs[0].Def = must[[]byte](t)(json.Marshal(store.ChangeSecret{Version: 2, Ciphertext: []byte{8, 8, 8}}))
	must[store.SyncTarget](t)(dst.SyncApply(ctx(t), store.SyncApplyParams{Source: "A", From: from, To: cs[0].Seq, Changes: cs, Now: t0}))
	if got := must[store.Secret](t)(dst.SecretGet(ctx(t), "db")); got.Version != 2 || !bytes.Equal(got.Ciphertext, []byte{8, 8, 8}) {
		t.Fatalf("target's secret after the stream %+v", got)
	}
	last := changes(t, dst)[len(changes(t, dst))-1]
	if last.Entity != store.EntitySecret || last.SourceSeq != cs[0].Seq {
		t.Fatalf("target's log ends with %+v", last)
	}
	// Gone on the source, then a full sync: gone on the target, its own kept.
	must[error](t)(nil, src.UserDelete(ctx(t), store.UserDeleteParams{Name: "bob", Audit: a}))
	must[error](t)(nil, src.TokenRevoke(ctx(t), store.TokenRevokeParams{Name: "ci", Audit: a}))
	must[error](t)(nil, src.SecretDelete(ctx(t), store.SecretDeleteParams{Name: "db", Audit: a}))
	syncFull(t, src, dst, "A")
	if _, err := dst.UserGet(ctx(t), "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a user gone from the source stayed on the target: %v", err)
	}
	if _, err := dst.TokenByHash(ctx(t), "tokhash"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a token gone from the source stayed on the target: %v", err)
	}
	if _, err := dst.SecretGet(ctx(t), "db"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a secret gone from the source stayed on the target: %v", err)
	}
	must[store.User](t)(dst.UserGet(ctx(t), "dradmin"))
	must[store.Token](t)(dst.TokenByHash(ctx(t), "synchash"))
	must[store.Secret](t)(dst.SecretGet(ctx(t), "local"))
}
