package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
)

// runOn is a run as `runs --json` shows it, with its node.
type runOn struct {
	ID      int64  `json:"id"`
	State   string `json:"state"`
	Node    string `json:"node"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

func runsOn(t *testing.T, s *server, job string) []runOn {
	t.Helper()
	var rs []runOn
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--job", job, "--limit", "1000", "--json")), &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

func events(t *testing.T, s *server) []api.Event {
	t.Helper()
	var evs []api.Event
	if err := json.Unmarshal([]byte(tandem(t, s, "events", "--limit", "1000", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// freeAddr is a loopback address nothing listens on now: a restarted node listens
// where it did.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func applyJob(t *testing.T, s *server, dir, toml string) {
	t.Helper()
	f := filepath.Join(dir, fmt.Sprintf("job-%d.toml", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	tandem(t, s, "job", "apply", "-f", f)
}

// A graceful stop drains: `node stop`, `node restart` and SIGTERM, all at once on three
// busy nodes. Every run in flight goes on to succeed once, on the node it started on,
// with attempt 1; each node shows itself draining and records its stop; no node is
// declared lost (which would re-queue its runs while they still run).
func TestGracefulStopDrainsRunsInFlight(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	common := []string{"--db", db, "--shutdown-grace", "30s", "--capacity", "3"}
	aAddr := freeAddr(t)
	a := startServer(t, filepath.Join(dir, "a"), append(common, "--node-id", "a", "--priority", "0", "--listen", aAddr)...)
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	b := startServer(t, filepath.Join(dir, "b"), append(common, "--node-id", "b", "--priority", "1")...)
	c := startServer(t, filepath.Join(dir, "c"), append(common, "--node-id", "c", "--priority", "2")...)
	testutil.Wait(t, 30*time.Second, "b and c to stand by", func() bool {
		st := status(t, a)
		return modeOf(st, "b") == "standby" && modeOf(st, "c") == "standby"
	})
	applyJob(t, a, dir, `
name = "slow"
retries = 2
[command]
argv = ["sh", "-c", "sleep 12; echo done"]
`)
	for range 9 {
		tandem(t, a, "run", "slow")
	}
	var before []runOn
	testutil.Wait(t, 30*time.Second, "9 runs running on three nodes", func() bool {
		before = runsOn(t, a, "slow")
		on := map[string]int{}
		for _, r := range before {
			if r.State == "running" {
				on[r.Node]++
			}
		}
		return on["a"]+on["b"]+on["c"] == 9 && on["a"] > 0 && on["b"] > 0 && on["c"] > 0
	})

	tandem(t, a, "node", "stop", "b")
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tandem(t, a, "node", "restart", "a")
	// While they drain, the nodes say so.
	var draining api.Status
	testutil.Wait(t, 5*time.Second, "b and c to show draining", func() bool {
		out, err := tandemErr(b, "status", "--json")
		if err != nil || json.Unmarshal([]byte(out), &draining) != nil {
			return false
		}
		return modeOf(draining, "b") == "draining" && modeOf(draining, "c") == "draining"
	})
	for _, n := range draining.Nodes {
		if n.ID == "b" && !strings.Contains(fmt.Sprint(n.Services), "Draining") {
			t.Errorf("services of draining b: %v", n.Services)
		}
	}
	for _, s := range []*server{b, c} {
		select {
		case err := <-s.done:
			if err != nil {
				t.Fatalf("a drained node exited with %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a draining node did not exit")
		}
	}
	// a restarted itself in place (same process id, same address).
	testutil.Wait(t, 60*time.Second, "a to be primary again after its restart", func() bool {
		out, err := tandemErr(a, "status", "--json")
		var st api.Status
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Primary == "a"
	})
	testutil.Wait(t, 30*time.Second, "every run to end", func() bool {
		for _, r := range runsOn(t, a, "slow") {
			if r.State != "succeeded" && r.State != "failed" && r.State != "canceled" {
				return false
			}
		}
		return true
	})
	node := map[int64]string{}
	for _, r := range before {
		node[r.ID] = r.Node
	}
	for _, r := range runsOn(t, a, "slow") {
		if r.State != "succeeded" || r.Attempt != 1 || r.Node != node[r.ID] {
			t.Errorf("run %d: %s attempt %d on %s (%s); want succeeded with attempt 1 on %s", r.ID, r.State, r.Attempt, r.Node, r.Reason, node[r.ID])
		}
	}
	stopping, stopped := map[string]bool{}, map[string]bool{}
	for _, e := range events(t, a) {
		switch e.Type {
		case "node.lost":
			t.Errorf("event %s: %s", e.Type, e.Message)
		case "node.stopping":
			stopping[e.Node] = true
		case "node.stopped":
			stopped[e.Node] = true
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if !stopping[id] || !stopped[id] {
			t.Errorf("node %s: node.stopping %v, node.stopped %v; want both", id, stopping[id], stopped[id])
		}
	}
}

// startFails runs `tandem server` expecting it to refuse to start; it returns what the
// process printed.
func startFails(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("tandem server %s kept running; want a refusal\n%s", strings.Join(args, " "), out)
	}
	if err == nil {
		t.Fatalf("tandem server %s exited 0; want a refusal\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// One live process per node id and per data directory: a second claimant refuses to
// start and says who holds the id, and where; after a crash the id is taken over at once.
func TestOneProcessPerNodeIDAndDataDir(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })

	out := startFails(t, "--db", db, "--data-dir", filepath.Join(dir, "a2"), "--node-id", "a")
	host := strings.TrimPrefix(a.addr, "http://")
	if !strings.Contains(out, "node id a is in use") || !strings.Contains(out, host) || !strings.Contains(out, "last heartbeat") {
		t.Errorf("second process for node id a: %s\nwant a refusal naming the id, %s and the heartbeat's age", out, host)
	}
	out = startFails(t, "--db", db, "--data-dir", filepath.Join(dir, "a"), "--node-id", "other")
	if !strings.Contains(out, "data directory") || !strings.Contains(out, "in use") {
		t.Errorf("second process on a's data directory: %s\nwant a refusal naming the data directory", out)
	}
	if st := status(t, a); len(st.Nodes) != 1 || st.Nodes[0].Address != host {
		t.Fatalf("status after the refusals: %+v; want a alone, at %s", st.Nodes, host)
	}

	// A crash frees the id at once: a new process takes it over without waiting.
	if err := a.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	start := time.Now()
	a2 := startServer(t, filepath.Join(dir, "a2"), "--db", db, "--node-id", "a")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("taking over a dead process's node id took %s", took)
	}
	testutil.Wait(t, 30*time.Second, "the new process of a to be primary", func() bool {
		st := status(t, a2)
		return st.Primary == "a" && len(st.Nodes) == 1 && st.Nodes[0].Address == strings.TrimPrefix(a2.addr, "http://")
	})
}

// Operator holds are stored: the primary role's suspension survives a kill -9 of the
// suspended primary (its successor starts suspended and fires nothing), a held standby
// stays held across a restart, status says who set each hold and when, and a node
// killed with kill -9 shows as lost at once.
func TestHoldsSurviveFailoverAndRestart(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	bAddr := freeAddr(t)
	b := startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1", "--listen", bAddr)
	testutil.Wait(t, 30*time.Second, "b to stand by", func() bool { return modeOf(status(t, a), "b") == "standby" })
	applyJob(t, a, dir, `
name = "tick"
schedule = ["* * * * * *"]
misfire = "skip"
[noop]
`)
	testutil.Wait(t, 30*time.Second, "tick to fire", func() bool { return len(runsOn(t, a, "tick")) > 0 })

	if out := tandem(t, b, "suspend"); !strings.Contains(out, "suspend done") {
		t.Fatalf("tandem suspend: %s", out)
	}
	st := status(t, b)
	if st.Suspended == nil || !strings.Contains(st.Suspended.By, "via node b") || st.Suspended.At.IsZero() {
		t.Fatalf("status after suspend: %+v; want the suspension with who set it (via node b) and when", st.Suspended)
	}
	if err := a.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	testutil.Wait(t, 10*time.Second, "b to take over, suspended", func() bool {
		st := status(t, b)
		return st.Primary == "b" && modeOf(st, "b") == "suspended"
	})
	fired := len(runsOn(t, b, "tick"))
	time.Sleep(2500 * time.Millisecond) // a second-by-second schedule would fire twice here
	if n := len(runsOn(t, b, "tick")); n != fired {
		t.Fatalf("the suspended successor fired: %d records, then %d", fired, n)
	}
	var changed *api.Event
	for _, e := range events(t, b) {
		if e.Type == "primary.changed" && e.Node == "b" {
			changed = &e
			break
		}
	}
	if changed == nil || changed.Data["suspended"] != true || !strings.Contains(changed.Message, "suspended") {
		t.Fatalf("primary.changed of b: %+v; want it to say the role is suspended", changed)
	}
	tandem(t, b, "resume")
	testutil.Wait(t, 10*time.Second, "b to fire again", func() bool { return len(runsOn(t, b, "tick")) > fired })
	if st := status(t, b); st.Suspended != nil || modeOf(st, "b") != "primary" {
		t.Fatalf("after resume: suspended %+v, mode %s", st.Suspended, modeOf(st, "b"))
	}

	// A held standby stays held across a restart of its process.
	a = startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0")
	testutil.Wait(t, 30*time.Second, "a to stand by", func() bool { return modeOf(status(t, b), "a") == "standby" })
	tandem(t, b, "node", "standby", "a")
	if err := a.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	a = startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0")
	testutil.Wait(t, 30*time.Second, "a to come back held", func() bool { return modeOf(status(t, b), "a") == "held" })
	for _, n := range status(t, b).Nodes {
		if n.ID == "a" && (n.Hold == nil || n.Hold.Kind != "standby" || n.Hold.By == "") {
			t.Fatalf("status row of a: hold %+v; want the standby hold and who set it", n.Hold)
		}
	}
	if out := tandem(t, b, "status"); !strings.Contains(out, "Node a is held (by token bootstrap-admin from") {
		t.Fatalf("status table:\n%s\nwant a line saying a is held and by whom", out)
	}

	// A kill -9'd node shows as lost at once, not as a healthy standby for seconds.
	tandem(t, b, "node", "resume", "a")
	testutil.Wait(t, 10*time.Second, "a to stand by", func() bool { return modeOf(status(t, b), "a") == "standby" })
	if err := a.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	killed := time.Now()
	testutil.Wait(t, 10*time.Second, "a to show lost", func() bool { return modeOf(status(t, b), "a") == "lost" })
	if took := time.Since(killed); took > 1500*time.Millisecond {
		t.Errorf("a kill -9'd node showed as lost after %s; want at once (well before 3 heartbeats)", took)
	}
}

// procAlive reports whether process pid exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// A dead node's commands die with it: kill -9 a node running a long command (a shell
// and its child). Every process of the command is gone within a second; the primary
// re-queues the run at once; attempt 2 finds none of attempt 1's processes alive.
func TestDeadNodesCommandsDieWithIt(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--capacity", "0")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	workers := map[string]*server{}
	for _, id := range []string{"b", "c"} {
		workers[id] = startServer(t, filepath.Join(dir, id), "--db", db, "--node-id", id, "--worker")
	}
	testutil.Wait(t, 30*time.Second, "b and c to join", func() bool {
		st := status(t, a)
		return modeOf(st, "b") == "worker" && modeOf(st, "c") == "worker"
	})
	pids, overlap := filepath.Join(dir, "pids"), filepath.Join(dir, "overlap")
	applyJob(t, a, dir, fmt.Sprintf(`
name = "long"
retries = 1
[command]
argv = ["sh", "-c", '''
for p in $(cat %[1]s 2>/dev/null); do
  s=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null)
  if [ -n "$s" ] && [ "$s" != Z ]; then echo "attempt $TANDEM_ATTEMPT: $p alive" >> %[2]s; fi
done
sleep 12 &
echo $! >> %[1]s; echo $$ >> %[1]s
wait''']
`, pids, overlap))
	tandem(t, a, "run", "long")
	var r runOn
	testutil.Wait(t, 30*time.Second, "the run to be running, its processes recorded", func() bool {
		rs := runsOn(t, a, "long")
		b, _ := os.ReadFile(pids)
		r = rs[0]
		return r.State == "running" && len(strings.Fields(string(b))) == 2
	})
	b, _ := os.ReadFile(pids)
	var first []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		first = append(first, pid)
	}
	victim := workers[r.Node]
	if err := victim.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	killed := time.Now()
	testutil.Wait(t, time.Second, "every process of attempt 1 to die with its node", func() bool {
		for _, pid := range first {
			if procAlive(pid) {
				return false
			}
		}
		return true
	})
	var second runOn
	testutil.Wait(t, 30*time.Second, "attempt 2 to run on the other node", func() bool {
		second = runsOn(t, a, "long")[0]
		return second.Attempt == 2 && second.State == "running"
	})
	if took := time.Since(killed); took > 2500*time.Millisecond {
		t.Errorf("attempt 2 started %s after the kill; want the dead node's run re-queued at once", took)
	}
	if second.Node == r.Node {
		t.Errorf("attempt 2 on %s, the dead node", second.Node)
	}
	if b, err := os.ReadFile(overlap); err == nil {
		t.Fatalf("attempt 2 found attempt 1 still running: %s", b)
	}
	var lost bool
	for _, e := range events(t, a) {
		lost = lost || (e.Type == "node.lost" && e.Node == "a" && strings.Contains(e.Message, "node "+r.Node+" lost: its process"))
	}
	if !lost {
		t.Error("no node.lost event saying the node's process died")
	}
	tandem(t, a, "runs", "cancel", strconv.FormatInt(second.ID, 10))
}
