package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
	"github.com/tandemhq/tandem/internal/testutil/mailtest"
)

// mailbox is a real SMTP server in the test process (plain, no auth), keeping every
// mail it accepts.
type mailbox struct {
	*mailtest.Box
	addr string
}

func newMailbox(t *testing.T) *mailbox {
	t.Helper()
	b, addr := mailtest.Start(t)
	return &mailbox{Box: b, addr: addr.String()}
}

// serveSMTP serves srv (an in-process SMTP server) on a loopback port until the test
// ends, and returns its address.
func serveSMTP(t *testing.T, srv *smtp.Server) string { return mailtest.Serve(t, srv).String() }

// mailConfig writes a server configuration sending mail to b.
func mailConfig(t *testing.T, dir string, b *mailbox, extra string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(b.addr)
	conf := filepath.Join(dir, "tandem.toml")
	body := fmt.Sprintf("[smtp]\nhost = %q\nport = %s\nfrom = \"tandem@example.com\"\ntls = \"none\"\n\n[deliver]\nclaim = \"8s\"\nhandoff = \"1s\"\nbackoff = \"1s\"\n%s", host, port, extra)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

func applyRules(t *testing.T, s *server, dir, toml string) (string, error) {
	t.Helper()
	f := filepath.Join(dir, fmt.Sprintf("rules-%d.toml", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return tandemErr(s, "rule", "apply", "-f", f)
}

func notifications(t *testing.T, s *server, rule string) []api.Notification {
	t.Helper()
	var ns []api.Notification
	if err := json.Unmarshal([]byte(tandem(t, s, "notifications", "--rule", rule, "--json")), &ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// allDelivered reports whether every notification of rule has its records delivered.
func allDelivered(t *testing.T, s *server, rule string) bool {
	t.Helper()
	for _, n := range notifications(t, s, rule) {
		var full api.Notification
		if err := json.Unmarshal([]byte(tandem(t, s, "notifications", "show", fmt.Sprint(n.ID), "--json")), &full); err != nil {
			t.Fatal(err)
		}
		for _, d := range full.Deliveries {
			if d.State != "delivered" {
				return false
			}
		}
	}
	return true
}

// Three processes on one SQLite file, a mail server in the test. A rule file with a
// condition on a field node.lost does not have is refused, the field named, and
// nothing of it applied. Then: kill -9 the worker → exactly one node.lost mail, about
// it; kill -9 the primary → the standby takes over and sends exactly one mail, naming
// the old primary; a run failing its last attempt → one run.failed mail. `rule test`
// judges the stored events.
func TestNotifyServerDownOnceFromWhicheverNodeIsPrimary(t *testing.T) {
	// Not parallel: it judges lost nodes and failover of real processes.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	box := newMailbox(t)
	conf := mailConfig(t, dir, box, "")
	nodes := map[string]*server{}
	nodes["a"] = startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0", "--config", conf)
	nodes["b"] = startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1", "--config", conf)
	nodes["c"] = startServer(t, filepath.Join(dir, "c"), "--db", db, "--node-id", "c", "--worker", "--config", conf)
	a, b := nodes["a"], nodes["b"]
	testutil.Wait(t, 30*time.Second, "a primary, b standing by, c a worker", func() bool {
		st := status(t, a)
		return st.Primary == "a" && modeOf(st, "b") == "standby" && modeOf(st, "c") == "worker"
	})

	out, err := applyRules(t, a, dir, `
[[rule]]
name = "ok"
on   = ["node.lost"]

[[rule]]
name = "typo"
on   = ["delivery.failed"]
when = 'data.sucess == false'
`)
	if err == nil || !strings.Contains(out, "rule[1].when") || !strings.Contains(out, "data.sucess") {
		t.Fatalf("rule file with an unknown field: %v\n%s\nwant it refused naming rule[1].when and data.sucess", err, out)
	}
	if got := tandem(t, a, "rule", "list"); strings.Contains(got, "ok") {
		t.Fatalf("a refused file applied a rule:\n%s", got)
	}
	if out, err := applyRules(t, a, dir, `
[[rule]]
name = "server-down"
on   = ["node.lost"]
key  = "{{.Node}}"
[rule.email]
to = ["ops@example.com"]
subject = "tandem: {{.Type}} on {{.Node}}"

[[rule]]
name = "run-failed"
on   = ["run.failed"]
key  = "{{.Data.job}}"
[rule.email]
to = ["ops@example.com"]
subject = "tandem: run {{.Data.run}} of {{.Data.job}} failed (attempt {{.Data.attempt}})"
`); err != nil {
		t.Fatalf("apply rules: %v\n%s", err, out)
	}

	// kill -9 the worker: one mail about c.
	if err := nodes["c"].stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	testutil.Wait(t, 30*time.Second, "the node.lost mail about c", func() bool { return box.WithSubject("node.lost on c") >= 1 })

	// A run failing its last attempt (two attempts): one run.failed mail, none for
	// the retry.
	applyJob(t, a, dir, `
name = "breaks"
retries = 1
retry_backoff = "1s"
[command]
argv = ["sh", "-c", "exit 3"]
`)
	tandemErr(a, "run", "breaks", "--wait")
	testutil.Wait(t, 30*time.Second, "the run.failed mail", func() bool { return box.WithSubject("of breaks failed") >= 1 })
	// Recorded delivered before the primary is killed: a sender killed between the
	// mail and its record sends it again (at-least-once), which is the other test's.
	testutil.Wait(t, 30*time.Second, "the notices to be recorded delivered", func() bool {
		return allDelivered(t, a, "run-failed") && allDelivered(t, a, "server-down")
	})

	// kill -9 the primary: b takes over, declares a lost and mails it once.
	if err := a.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	testutil.Wait(t, 30*time.Second, "b to take over", func() bool { return status(t, b).Primary == "b" })
	testutil.Wait(t, 30*time.Second, "the node.lost mail about a", func() bool { return box.WithSubject("node.lost on a") >= 1 })
	time.Sleep(3 * time.Second) // what else would come comes within the notifier's and deliverer's polls
	subs := box.Subjects()
	if box.WithSubject("node.lost on c") != 1 || box.WithSubject("node.lost on a") != 1 || box.WithSubject("of breaks failed (attempt 2)") != 1 || len(subs) != 3 {
		t.Fatalf("mails: %q; want one node.lost on c, one node.lost on a, one run.failed of attempt 2", subs)
	}
	down := notifications(t, b, "server-down")
	if len(down) != 2 || down[0].Key != "a" || down[0].Node != "b" || down[1].Key != "c" || down[1].Node != "a" {
		t.Fatalf("server-down notifications %+v; want c's recorded by a, then a's by b", down)
	}
	var body api.Notification
	if err := json.Unmarshal([]byte(tandem(t, b, "notifications", "show", fmt.Sprint(down[0].ID), "--json")), &body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.Body, "primary node a lost") || len(body.Deliveries) != 1 || body.Deliveries[0].State != "delivered" {
		t.Fatalf("notification about a: %+v; want a body naming the old primary, delivered once", body)
	}

	// rule test on the stored events: the node.lost of a matches server-down, and
	// run-failed does not match it.
	got := tandem(t, b, "rule", "test", "server-down", "--event", fmt.Sprint(down[0].Event))
	if !strings.Contains(got, "matches event") || !strings.Contains(got, "subject:  tandem: node.lost on a") || !strings.Contains(got, "recorded for this event") {
		t.Fatalf("rule test server-down:\n%s", got)
	}
	got = tandem(t, b, "rule", "test", "run-failed", "--event", fmt.Sprint(down[0].Event))
	if !strings.Contains(got, "does not match") || !strings.Contains(got, "not node.lost") {
		t.Fatalf("rule test run-failed on a node.lost event:\n%s", got)
	}
}

// A flapping worker (killed and restarted, three losses within repeat = "1m") makes one
// mail and, once the window has passed, one digest of the two repeats. Meanwhile a
// webhook notice whose request the receiver holds: its sender is killed with kill -9
// after the notification was recorded and before it was answered; another node sends
// it again under the same webhook-id, and the record ends delivered once.
func TestNotifyFlappingNodeDigestAndKilledSender(t *testing.T) {
	// Not parallel: it judges lost nodes of real processes and a one-minute window.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	box := newMailbox(t)
	rcv := newHoldingReceiver(t)
	conf := mailConfig(t, dir, box, "")
	nodes := map[string]*server{}
	start := map[string][]string{
		"a": {"--db", db, "--node-id", "a", "--priority", "0", "--config", conf},
		"b": {"--db", db, "--node-id", "b", "--priority", "1", "--config", conf},
		"c": {"--db", db, "--node-id", "c", "--worker", "--config", conf},
	}
	for _, id := range []string{"a", "b", "c"} {
		nodes[id] = startServer(t, filepath.Join(dir, id), start[id]...)
	}
	testutil.Wait(t, 30*time.Second, "a primary, b standing by, c a worker", func() bool {
		st := status(t, nodes["a"])
		return st.Primary == "a" && modeOf(st, "b") == "standby" && modeOf(st, "c") == "worker"
	})
	if out, err := applyRules(t, nodes["a"], dir, fmt.Sprintf(`
[[rule]]
name   = "flap"
on     = ["node.lost"]
when   = 'node == "c"'
key    = "{{.Node}}"
repeat = "1m"
[rule.email]
to = ["ops@example.com"]

[[rule]]
name = "hook"
on   = ["run.failed"]
[rule.webhook]
url    = %q
secret = %q
`, rcv.srv.URL, webhookSecret)); err != nil {
		t.Fatalf("apply rules: %v\n%s", err, out)
	}

	// The held webhook notice: kill its sender.
	applyJob(t, nodes["a"], dir, "name = \"once\"\n[command]\nargv = [\"false\"]\n")
	tandemErr(nodes["a"], "run", "once", "--wait")
	select {
	case <-rcv.first:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got no verified request")
	}
	var rec api.Delivery
	testutil.Wait(t, 10*time.Second, "the notice's record to show as sending", func() bool {
		ns := notifications(t, nodes["a"], "hook")
		if len(ns) != 1 {
			return false
		}
		var n api.Notification
		if err := json.Unmarshal([]byte(tandem(t, nodes["a"], "notifications", "show", fmt.Sprint(ns[0].ID), "--json")), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Deliveries) != 1 {
			t.Fatalf("notification %+v; want one delivery record", n)
		}
		rec = n.Deliveries[0]
		return rec.State == "sending" && rec.Node != ""
	})
	killed := rec.Node
	if err := nodes[killed].stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	t.Logf("killed %s while it sent notice %s", killed, rec.Key)
	var alive *server
	for _, id := range []string{"a", "b", "c"} {
		if id != killed {
			alive = nodes[id]
			break
		}
	}
	testutil.Wait(t, 60*time.Second, "the notice to be delivered again", func() bool {
		ns := notifications(t, alive, "hook")
		var n api.Notification
		if err := json.Unmarshal([]byte(tandem(t, alive, "notifications", "show", fmt.Sprint(ns[0].ID), "--json")), &n); err != nil {
			t.Fatal(err)
		}
		rec = n.Deliveries[0]
		return rec.State == "delivered"
	})
	ids, bad := rcv.seen()
	if bad != 0 || len(ids) != 2 || ids[0] != rec.Key || ids[1] != rec.Key {
		t.Fatalf("receiver saw %v (%d unverified); want %s twice", ids, bad, rec.Key)
	}
	var full api.Delivery
	if err := json.Unmarshal([]byte(tandem(t, alive, "deliveries", "show", fmt.Sprint(rec.ID), "--json")), &full); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, at := range full.History {
		if at.Outcome == "delivered" {
			delivered++
		}
	}
	if delivered != 1 || len(notifications(t, alive, "hook")) != 1 {
		t.Fatalf("the notice's record %+v; want one notification, delivered once", full)
	}
	if killed != "c" { // bring the killed node back, so that there are two to choose a primary from
		nodes[killed] = startServer(t, filepath.Join(dir, killed), start[killed]...)
	}

	// c flaps: lost three times within the minute (counting a kill above, if c was it).
	losses := func() int {
		n := 0
		for _, e := range events(t, alive) {
			if e.Type == "node.lost" && e.Data["node"] == "c" {
				n++
			}
		}
		return n
	}
	for losses() < 3 {
		if nodes["c"].hasExited() {
			nodes["c"] = startServer(t, filepath.Join(dir, "c"), start["c"]...)
			testutil.Wait(t, 30*time.Second, "c to rejoin", func() bool { return modeOf(status(t, alive), "c") == "worker" })
		}
		want := losses() + 1
		if err := nodes["c"].stop(t, syscall.SIGKILL); err == nil {
			t.Fatal("kill -9 reported a clean exit")
		}
		testutil.Wait(t, 30*time.Second, "c to be declared lost", func() bool { return losses() >= want })
	}
	testutil.Wait(t, 15*time.Second, "the first mail about c", func() bool { return box.WithSubject("node.lost on c") >= 1 })
	testutil.Wait(t, 100*time.Second, "the digest after the window", func() bool { return box.WithSubject("c: node.lost 2 more times within 1m0s") >= 1 })
	time.Sleep(3 * time.Second)
	if subs := box.Subjects(); len(subs) != 2 || box.WithSubject("node.lost on c") != 1 {
		t.Fatalf("mails %q; want one notice about c and one digest", subs)
	}
	flap := notifications(t, alive, "flap")
	kinds := map[string]int{}
	for _, n := range flap {
		kinds[n.Kind+"/"+n.State]++
	}
	if kinds["notice/sent"] != 1 || kinds["notice/suppressed"] != 2 || kinds["digest/sent"] != 1 || len(flap) != 4 {
		t.Fatalf("flap notifications %+v (%v); want 1 sent, 2 suppressed, 1 digest", flap, kinds)
	}
}
