package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/cluster"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	t      *testing.T
	st     store.Store
	mu     sync.Mutex
	events []string
	queued int
}

func newFixture(t *testing.T) *fixture {
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{t: t, st: st}
}

// member is the membership of node id with the given mode, capacity and priority. The
// silence (three intervals, 900ms) is long enough that the nodes of a test, beaten one
// after another on a loaded machine under the race detector, are all still live when it
// looks, and short enough that a test waiting for it stays quick.
func (f *fixture) member(id, mode string, capacity, priority int) *cluster.Membership {
	return cluster.New(cluster.Params{Store: f.st, Log: slog.New(slog.DiscardHandler), Self: id,
		Interval: 300 * time.Millisecond, MaxMissed: 3,
		Describe: func() store.Node {
			return store.Node{Address: id + ":1", Mode: mode, Capacity: capacity, Priority: priority}
		},
		Event: func(typ, msg string, _ map[string]any) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, typ+": "+msg)
		},
		Requeued: func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.queued++
		}})
}

func (f *fixture) beat(m *cluster.Membership, mode string) {
	f.t.Helper()
	if err := m.Heartbeat(context.Background(), mode); err != nil {
		f.t.Fatal(err)
	}
}

func ids(nodes []store.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// Live nodes are those heard from within the silence that neither stopped nor were lost;
// standbys come in takeover order (priority, then id) and rank counts those before a node.
func TestLiveStandbysAndRank(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.member("p", cluster.ModePrimary, 4, 0)
	b := f.member("b", cluster.ModeStandby, 4, 1)
	a := f.member("a", cluster.ModeStandby, 4, 1)
	c := f.member("c", cluster.ModeStandby, 4, 0)
	h := f.member("h", cluster.ModeHeld, 4, 0)
	s := f.member("s", cluster.ModeStandby, 4, 0)
	for _, m := range []*cluster.Membership{p, b, a, c, h, s} {
		f.beat(m, "")
	}
	f.beat(s, cluster.ModeStopped)
	live, err := p.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(live); !slices.Equal(got, []string{"a", "b", "c", "h", "p"}) {
		t.Fatalf("live = %v, want every node but the stopped one", got)
	}
	if got := ids(p.Standbys(ctx)); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("standbys = %v, want c (priority 0), then a, b (priority 1, by id)", got)
	}
	if r := b.Rank(ctx, 1); r != 2 {
		t.Fatalf("rank of b = %d, want 2 (c and a first)", r)
	}
	if r := c.Rank(ctx, 0); r != 0 {
		t.Fatalf("rank of c = %d, want 0", r)
	}
	// Silent past max_missed intervals: not live any more.
	time.Sleep(p.Silence() + 20*time.Millisecond)
	f.beat(p, "")
	live, _ = p.Live(ctx)
	if got := ids(live); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("live after the others went silent = %v, want [p]", got)
	}
}

// A node that stepped down since its last heartbeat still shows the primary's mode: the
// new primary may switch to it by name.
func TestSwitchableIncludesFormerPrimary(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.member("old", cluster.ModePrimary, 4, 0)
	cur := f.member("cur", cluster.ModePrimary, 4, 1)
	w := f.member("w", cluster.ModeWorker, 4, 0)
	f.beat(old, "")
	f.beat(cur, "")
	f.beat(w, "")
	if got := ids(cur.Switchable(ctx)); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("switchable = %v, want [old]", got)
	}
	if got := ids(cur.Standbys(ctx)); len(got) != 0 {
		t.Fatalf("standbys = %v, want none (takeover order uses recorded modes only)", got)
	}
}

// Targets are live nodes with capacity, less what is assigned to or running on them; a
// stopping node and a node of capacity 0 take nothing.
func TestTargetsFreeCapacity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply("j")
	p := f.member("p", cluster.ModePrimary, 2, 0)
	w := f.member("w", cluster.ModeWorker, 3, 0)
	z := f.member("z", cluster.ModeStandby, 0, 0)
	s := f.member("s", cluster.ModeDraining, 4, 0)
	for _, m := range []*cluster.Membership{p, w, z, s} {
		f.beat(m, "")
	}
	f.assign("j", "w", "t1")
	f.assign("j", "w", "t2")
	targets, err := p.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	free := map[string]int{}
	for _, tg := range targets {
		free[tg.ID] = tg.Free
	}
	if len(free) != 2 || free["p"] != 2 || free["w"] != 1 {
		t.Fatalf("targets = %+v, want p with 2 free and w with 1 (3 less 2 assigned)", targets)
	}
}

// The primary declares a silent node lost once, records the event, queues its runs again,
// and notes when it comes back; a superseded epoch changes nothing and ends the reaper.
func TestReapLosesSilentNode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply("j")
	l := f.lead("p")
	p := f.member("p", cluster.ModePrimary, 4, 0)
	gone := f.member("gone", cluster.ModeStandby, 4, 0)
	f.beat(p, "")
	f.beat(gone, "")
	run := f.assign("j", "gone", "t1")
	lost := map[string]bool{}
	if err := p.ReapOnce(ctx, l.Epoch, lost); err != nil {
		t.Fatal(err)
	}
	if len(lost) != 0 {
		t.Fatal("a node heard from just now was declared lost")
	}
	time.Sleep(p.Silence() + 20*time.Millisecond)
	if err := p.ReapOnce(ctx, l.Epoch, lost); err != nil {
		t.Fatal(err)
	}
	if err := p.ReapOnce(ctx, l.Epoch, lost); err != nil { // a second pass changes nothing
		t.Fatal(err)
	}
	got, err := f.st.RunGet(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !lost["gone"] || got.State != store.RunQueued {
		t.Fatalf("after silence: lost=%v run=%+v, want gone lost and its run queued again", lost, got)
	}
	f.beat(gone, "")
	if err := p.ReapOnce(ctx, l.Epoch, lost); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	events, queued := slices.Clone(f.events), f.queued
	f.mu.Unlock()
	want := []string{"node.joined: node gone rejoined after being lost"}
	if !slices.Equal(events, want) || queued != 1 {
		t.Fatalf("events %q, requeued callbacks %d; want %q and 1", events, queued, want)
	}
	// node.lost is written by NodeLose, in its transaction, once.
	stored, err := f.st.EventList(ctx, store.EventListParams{Type: "node.lost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Message != "node gone lost: 3 heartbeats missed; re-queued 1 runs" || stored[0].Data["node"] != "gone" {
		t.Fatalf("stored node.lost events %+v, want one about gone", stored)
	}
	// Another primary took over: this reaper's epoch is stale.
	time.Sleep(p.Silence() + 20*time.Millisecond)
	err = p.ReapOnce(ctx, l.Epoch+1, map[string]bool{})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("reap under a superseded epoch: %v, want ErrFenced", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Reap(rctx, l.Epoch+1); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Reap under a superseded epoch returned %v, want ErrFenced", err)
	}
}

// Runs left assigned to a node that stopped go back to the queue without an attempt spent.
func TestReapReleasesStoppedNodesRuns(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply("j")
	l := f.lead("p")
	p := f.member("p", cluster.ModePrimary, 4, 0)
	s := f.member("s", cluster.ModeStandby, 4, 0)
	f.beat(p, "")
	f.beat(s, "")
	run := f.assign("j", "s", "t1")
	f.beat(s, cluster.ModeStopped)
	if err := p.ReapOnce(ctx, l.Epoch, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.RunGet(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RunQueued || got.Attempt != 0 || got.Node != "" {
		t.Fatalf("run of a stopped node: %+v, want queued again with no attempt spent", got)
	}
}

// lead gives node id the primary lease.
func (f *fixture) lead(id string) store.Lease {
	f.t.Helper()
	l, err := f.st.LeaseAcquire(context.Background(), store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: id + "#1", Node: id,
		TTL: time.Minute})
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) apply(name string) {
	f.t.Helper()
	sp := job.Spec{Name: name, Timezone: "UTC", Misfire: job.MisfireRunOnce, Overlap: job.OverlapAllow,
		Command: &job.Command{Argv: []string{"true"}}}
	if _, err := f.st.JobApply(context.Background(), store.JobApplyParams{Now: time.Now(), Jobs: []store.JobDef{{Spec: sp}}}); err != nil {
		f.t.Fatal(err)
	}
}

// assign creates a run of job and assigns it to node.
func (f *fixture) assign(jobName, node, token string) store.Run {
	f.t.Helper()
	ctx := context.Background()
	r, err := f.st.RunCreate(ctx, store.RunCreateParams{Job: jobName, Trigger: store.TriggerManual, Now: time.Now()})
	if err != nil {
		f.t.Fatal(err)
	}
	if n, err := f.st.RunAssign(ctx, store.RunAssignParams{Now: time.Now(), Assignments: []store.Assignment{{RunID: r.ID, Node: node, Token: token}}}); err != nil || n != 1 {
		f.t.Fatalf("assign: %d %v", n, err)
	}
	return r
}

// The status table judges each node by the one rule of liveness (silent past the
// silence is lost, whatever its last heartbeat said) and names the seed's services.
func TestStatusTable(t *testing.T) {
	f := newFixture(t)
	a, b := f.member("a", cluster.ModeStandby, 4, 10), f.member("b", cluster.ModeWorker, 0, 20)
	f.beat(a, "")
	f.beat(b, "")
	st, err := a.Status(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range st.Nodes {
		got[r.ID] = r.Mode + "/" + r.Services[4].Status
	}
	if got["a"] != "standby/Ready" || got["b"] != "worker/Disabled" {
		t.Fatalf("status rows %v, want a standby/Ready and b worker/Disabled", got)
	}
	time.Sleep(a.Silence() + 100*time.Millisecond) // b falls silent; a beats on
	f.beat(a, "")
	st, err = a.Status(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Nodes {
		if r.ID == "b" && (r.Mode != cluster.ModeLost || r.Services[0].Status != "Down") {
			t.Fatalf("silent node b shows %s with console %s, want lost and Down", r.Mode, r.Services[0].Status)
		}
	}
}
