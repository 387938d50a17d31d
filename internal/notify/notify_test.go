package notify_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/deliver"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/notify"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil/mailtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mailServer serves b, a real SMTP server in the test process (plain, no auth), until
// the test ends.
func mailServer(t *testing.T) (*mailtest.Box, channel.SMTP) {
	b, addr := mailtest.Start(t)
	return b, channel.SMTP{Host: "127.0.0.1", Port: addr.Port, From: "tandem@example.com", TLS: channel.TLSNone, Timeout: 5 * time.Second}
}

type fixture struct {
	t     *testing.T
	st    store.Store
	epoch int64
	box   *mailtest.Box
	now   time.Time // the notifier's clock
	n     *notify.Notifier
	d     *deliver.Deliverer
}

func newFixture(t *testing.T, rules string) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := storesqlite.Open(ctx, filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := st.LeaseAcquire(ctx, store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "p#1", Node: "p", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	box, mail := mailServer(t)
	f := &fixture{t: t, st: st, epoch: l.Epoch, box: box, now: time.Now()}
	f.apply(rules)
	f.n = notify.New(notify.Params{Store: st, Node: "p", Epoch: l.Epoch, Now: func() time.Time { return f.now }})
	f.d = deliver.New(deliver.Params{Store: st, Node: "p", MaxAttempts: 2, Backoff: time.Millisecond, Now: func() time.Time { return f.now },
		Senders: map[string]channel.Sender{job.ChannelEmail: &channel.Email{SMTP: mail}}})
	return f
}

func (f *fixture) apply(rules string) {
	f.t.Helper()
	specs, err := notify.Parse([]byte(rules))
	if err != nil {
		f.t.Fatal(err)
	}
	var defs []store.RuleDef
	for _, s := range specs {
		b, _ := s.Encode()
		defs = append(defs, store.RuleDef{Name: s.Name, Spec: b})
	}
	if _, err := f.st.RuleApply(context.Background(), store.RuleApplyParams{Rules: defs, Now: time.Now()}); err != nil {
		f.t.Fatal(err)
	}
}

// lose makes node a member, silent, and declares it lost (node.lost, in NodeLose).
func (f *fixture) lose(node string) {
	f.t.Helper()
	ctx := context.Background()
	nd := store.Node{ID: node, Holder: node + "#1", Mode: "worker", Capacity: 1, Weight: 1}
	if err := f.st.NodeHeartbeat(ctx, store.NodeHeartbeatParams{Node: nd}); err != nil {
		f.t.Fatal(err)
	}
	res, err := f.st.NodeLose(ctx, store.NodeLoseParams{Epoch: f.epoch, Node: node, Dead: node + "#1", By: "p", Why: "test"})
	if err != nil || !res.Lost {
		f.t.Fatalf("lose %s: %+v %v", node, res, err)
	}
}

// pass runs the notifier and then the deliverer until nothing is left to do.
func (f *fixture) pass() {
	f.t.Helper()
	ctx := context.Background()
	for range 5 {
		if _, err := f.n.Once(ctx); err != nil {
			f.t.Fatal(err)
		}
		for {
			k, err := f.d.Once(ctx)
			if err != nil {
				f.t.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
	}
}

func (f *fixture) notifications(rule string) []store.Notification {
	f.t.Helper()
	ns, err := f.st.NotificationList(context.Background(), store.NotificationListParams{Rule: rule})
	if err != nil {
		f.t.Fatal(err)
	}
	return ns
}

const serverDown = `
[[rule]]
name = "server-down"
on   = ["node.lost"]
key  = "{{.Node}}"
repeat = "1m"
[rule.email]
to = ["ops@example.com"]
subject = "tandem: {{.Type}} on {{.Node}}"
`

// A lost node is mailed once, however often the notifier and deliverer pass; a flapping
// node within repeat is suppressed, recorded, and summed up in one digest after the
// window.
func TestNodeLostMailedOnceThenDigest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, serverDown)
	f.lose("b")
	f.pass()
	mails := f.box.Mails()
	if len(mails) != 1 || !strings.Contains(mails[0], "Subject: tandem: node.lost on b") {
		t.Fatalf("mails after b was lost: %q, want one about b", mails)
	}
	for range 3 { // b flaps
		if err := f.st.NodeHeartbeat(context.Background(), store.NodeHeartbeatParams{Node: store.Node{ID: "b", Holder: "b#1", Mode: "worker"}}); err != nil {
			t.Fatal(err)
		}
		f.lose("b")
	}
	f.pass()
	if got := f.box.Mails(); len(got) != 1 {
		t.Fatalf("%d mails after b flapped within the window, want still 1", len(got))
	}
	ns := f.notifications("server-down")
	if len(ns) != 4 || ns[0].State != store.NotificationSuppressed || ns[3].State != store.NotificationSent {
		t.Fatalf("notifications %+v, want 1 sent then 3 suppressed", ns)
	}
	f.now = f.now.Add(2 * time.Minute) // the window has passed
	f.pass()
	f.pass()
	mails = f.box.Mails()
	if len(mails) != 2 || !strings.Contains(mails[1], "node.lost 3 more times within 1m0s") {
		t.Fatalf("mails after the window: %q, want a digest of 3", mails)
	}
	ns = f.notifications("server-down")
	if len(ns) != 5 || ns[0].Kind != store.DigestKind || ns[0].Count != 3 {
		t.Fatalf("notifications %+v, want a digest of 3 last", ns)
	}
	full, err := f.st.NotificationGet(context.Background(), ns[0].ID)
	if err != nil || len(full.Deliveries) != 1 || full.Deliveries[0].State != store.DeliveryDelivered {
		t.Fatalf("digest's records: %+v %v", full.Deliveries, err)
	}
}

// A notification whose channel is down ends in delivery.failed; the rule watching
// delivery.failed is not notified of its own failure (no loop), another rule is.
func TestNoLoopOnOwnFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `
[[rule]]
name = "failures"
on   = ["delivery.failed", "node.lost"]
[rule.email]
to = ["ops@example.com"]

[[rule]]
name = "audit"
on   = ["delivery.failed"]
`)
	f.box.SetDown(true)
	f.lose("c")
	f.pass()
	f.pass()
	if got := f.notifications("failures"); len(got) != 1 {
		t.Fatalf("rule failures made %d notifications, want 1 (the node.lost; not its own failure)", len(got))
	}
	audit := f.notifications("audit")
	if len(audit) != 1 || audit[0].EventType != "delivery.failed" || audit[0].State != store.NotificationNoChannel {
		t.Fatalf("audit notifications %+v, want the failure recorded once", audit)
	}
}

// A new rule does not notify about the events before it.
func TestNewRuleSkipsThePast(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `
[[rule]]
name = "first"
on = ["job.applied"]
`)
	f.lose("x")
	f.apply(`
[[rule]]
name = "late-comer"
on = ["node.lost"]
`)
	f.pass()
	if got := f.notifications("late-comer"); len(got) != 0 {
		t.Fatalf("a new rule notified about an earlier event: %+v", got)
	}
}

// The primary records a notice and dies before it is sent: the next primary's
// notifier does not record it again, and a deliverer sends it once; the deposed
// primary's notifier can record nothing more (fenced).
func TestNextPrimarySendsWhatTheDeadOneRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, serverDown)
	ctx := context.Background()
	f.lose("b")
	if _, err := f.n.Once(ctx); err != nil { // recorded, not sent: no deliverer ran
		t.Fatal(err)
	}
	if got := f.box.Mails(); len(got) != 0 {
		t.Fatalf("mails before any deliverer ran: %d", len(got))
	}
	l, err := f.st.LeaseAcquire(ctx, store.LeaseAcquireParams{Name: store.PrimaryLease, Holder: "q#1", Node: "q", TakeFrom: "p#1", TTL: time.Hour})
	if err != nil || l.Epoch != f.epoch+1 {
		t.Fatalf("take over: %+v %v", l, err)
	}
	old := f.n
	f.epoch = l.Epoch
	f.n = notify.New(notify.Params{Store: f.st, Node: "q", Epoch: l.Epoch, Now: func() time.Time { return f.now }})
	f.pass()
	f.lose("c") // an event the deposed notifier would judge
	if _, err := old.Once(ctx); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("the deposed primary's notifier: %v, want ErrFenced", err)
	}
	f.pass()
	mails := f.box.Mails()
	if len(mails) != 2 || !strings.Contains(mails[0], "node.lost on b") || !strings.Contains(mails[1], "node.lost on c") {
		t.Fatalf("mails %q; want b's (recorded by the old primary) and c's, once each", mails)
	}
	ns := f.notifications("server-down")
	if len(ns) != 2 || ns[1].Node != "p" || ns[0].Node != "q" {
		t.Fatalf("notifications %+v; want b's by p, c's by q", ns)
	}
}
