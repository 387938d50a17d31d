package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
)

func outputsOf(t *testing.T, s *server, run int64) []api.Output {
	t.Helper()
	var outs []api.Output
	if err := json.Unmarshal([]byte(tandem(t, s, "outputs", "--run", strconv.FormatInt(run, 10), "--json")), &outs); err != nil {
		t.Fatal(err)
	}
	return outs
}

// verifiedHolders lists the nodes holding a verified copy of the output named.
func verifiedHolders(outs []api.Output, name string) []string {
	var ids []string
	for _, o := range outs {
		if o.Name != name {
			continue
		}
		for _, h := range o.Holders {
			if h.State == "verified" {
				ids = append(ids, h.Node)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func durable(outs []api.Output, name string) bool {
	for _, o := range outs {
		if o.Name == name {
			return o.Durable
		}
	}
	return false
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// Outputs survive their node. Three nodes, copies = 2: a run's output is on two nodes;
// kill -9 the producer and the cluster copies it again to the third node within a few
// heartbeats; it downloads, byte-identical, through each survivor; a copy corrupted on
// disk is found by its hash and fetched again from the other holder; with both original
// holders killed in turn it still downloads. An output of copies = 1 whose holder died
// says so: output lost: no live holder (last holder a, lost at …).
func TestOutputsSurviveTheirNode(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	nodes := map[string]*server{}
	for i, id := range []string{"a", "b", "c"} {
		nodes[id] = startServer(t, filepath.Join(dir, id), "--db", db, "--node-id", id, "--priority", strconv.Itoa(i), "--tags", "n"+id)
		if id == "a" {
			testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, nodes["a"]).Primary == "a" })
		}
	}
	testutil.Wait(t, 30*time.Second, "b and c to stand by", func() bool {
		st := status(t, nodes["a"])
		return modeOf(st, "b") == "standby" && modeOf(st, "c") == "standby"
	})
	applyJob(t, nodes["a"], dir, `
[[job]]
name = "report"
copies = 2
tags = ["na"]
[job.command]
argv = ["sh", "-c", "head -c 300000 /dev/urandom > $TANDEM_OUTPUT_DIR/report.bin; mkdir $TANDEM_OUTPUT_DIR/sub; echo total > $TANDEM_OUTPUT_DIR/sub/sum.txt"]

[[job]]
name = "single"
copies = 1
tags = ["na"]
[job.command]
argv = ["sh", "-c", "echo alone > $TANDEM_OUTPUT_DIR/one.txt"]
`)
	var report, single runOn
	tandem(t, nodes["b"], "run", "report")
	tandem(t, nodes["b"], "run", "single")
	testutil.Wait(t, 30*time.Second, "both runs to succeed", func() bool {
		r, s := runsOn(t, nodes["b"], "report"), runsOn(t, nodes["b"], "single")
		if len(r) == 1 && len(s) == 1 {
			report, single = r[0], s[0]
		}
		return report.State == "succeeded" && single.State == "succeeded"
	})
	if report.Node != "a" || single.Node != "a" {
		t.Fatalf("runs on %s and %s, want a (tags)", report.Node, single.Node)
	}
	var first []string
	testutil.Wait(t, 10*time.Second, "report.bin to have two verified copies", func() bool {
		outs := outputsOf(t, nodes["b"], report.ID)
		first = verifiedHolders(outs, "report.bin")
		return durable(outs, "report.bin") && durable(outs, "sub/sum.txt") && len(first) == 2
	})
	if !slices.Contains(first, "a") {
		t.Fatalf("holders %v, want the producer a among them", first)
	}
	second := first[0]
	if second == "a" {
		second = first[1]
	}
	third := map[string]string{"b": "c", "c": "b"}[second]
	file := func(node string) string {
		return filepath.Join(dir, node, "outputs", strconv.FormatInt(report.ID, 10), "1", "report.bin")
	}
	want, err := os.ReadFile(file("a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file(second)); err != nil || sha(got) != sha(want) {
		t.Fatalf("the copy on %s: %v, want the producer's bytes", second, err)
	}
	if fi, err := os.Stat(file(second)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy on %s: mode %v (%v), want 0600", second, fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(file(third)); !os.IsNotExist(err) {
		t.Fatalf("a third copy on %s before any loss: %v", third, err)
	}
	out := tandem(t, nodes[third], "runs", "show", strconv.FormatInt(report.ID, 10))
	if !strings.Contains(out, "report.bin") || !strings.Contains(out, "durable") {
		t.Errorf("runs show:\n%s\nwant report.bin said durable", out)
	}

	// kill -9 the producer (also the primary): the cluster copies the output to the third node.
	if err := nodes["a"].stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	killed := time.Now()
	testutil.Wait(t, 10*time.Second, "report.bin to be copied again to "+third, func() bool {
		outs := outputsOf(t, nodes[second], report.ID)
		return durable(outs, "report.bin") && slices.Equal(verifiedHolders(outs, "report.bin"), []string{"b", "c"})
	})
	if took := time.Since(killed); took > 5*time.Second {
		t.Errorf("copied again %s after the producer died; want within a few heartbeats", took)
	}
	types := map[string]api.Event{}
	for _, e := range events(t, nodes[second]) {
		if _, ok := types[e.Type]; !ok {
			types[e.Type] = e
		}
	}
	if e, ok := types["output.underreplicated"]; !ok || !strings.Contains(e.Message, "node a") {
		t.Errorf("output.underreplicated: %+v", e)
	}
	if e, ok := types["output.lost"]; !ok || !strings.Contains(e.Message, "node a") {
		t.Errorf("output.lost: %+v", e)
	}
	for _, id := range []string{"b", "c"} {
		got := tandem(t, nodes[id], "runs", "output", strconv.FormatInt(report.ID, 10), "report.bin")
		if sha([]byte(got)) != sha(want) {
			t.Fatalf("report.bin through %s: %d bytes with another hash, want the producer's %d", id, len(got), len(want))
		}
	}
	out, err = tandemErr(nodes[second], "runs", "output", strconv.FormatInt(single.ID, 10))
	if err == nil || !strings.Contains(out, "output lost: no live holder (last holder a, lost at ") {
		t.Fatalf("the copies = 1 output of the dead node: %v\n%s", err, out)
	}

	// A copy corrupted on disk is found by its hash and fetched again from the other holder.
	bad := slices.Clone(want)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(file(third), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	got := tandem(t, nodes[third], "runs", "output", strconv.FormatInt(report.ID, 10), "report.bin")
	if sha([]byte(got)) != sha(want) {
		t.Fatal("a corrupted copy was served")
	}
	if disk, err := os.ReadFile(file(third)); err != nil || sha(disk) != sha(want) {
		t.Fatalf("the corrupted copy on %s was not replaced: %v", third, err)
	}

	// The other original holder dies too: the third node still serves it.
	if err := nodes[second].stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	testutil.Wait(t, 10*time.Second, second+" to show lost", func() bool { return modeOf(status(t, nodes[third]), second) == "lost" })
	got = tandem(t, nodes[third], "runs", "output", strconv.FormatInt(report.ID, 10), "report.bin")
	if sha([]byte(got)) != sha(want) {
		t.Fatal("report.bin after both original holders died: not the producer's bytes")
	}
	if sum := tandem(t, nodes[third], "runs", "output", strconv.FormatInt(report.ID, 10), "sub/sum.txt"); sum != "total\n" {
		t.Fatalf("sub/sum.txt: %q", sum)
	}
}
