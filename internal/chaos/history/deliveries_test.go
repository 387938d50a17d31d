package history

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// The delivery rules on synthetic records: one record per entry of each succeeded run,
// none of other runs, each delivered (and received) or failed after its attempts.
func TestCheckDeliveries(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	run := func(id int64, state string) wire.Run {
		return wire.Run{ID: id, Job: "delivered", State: state, Attempt: 1, MaxAttempts: 4, Node: "a", Trigger: "manual", CreatedAt: t0.Add(time.Duration(id) * time.Second)}
	}
	rec := func(id, runID int64, entry int, state string, attempts int) wire.Delivery {
		return wire.Delivery{ID: id, Key: fmt.Sprintf("dlv_%d", id), Run: runID, Job: "delivered", Entry: entry, Channel: "webhook", State: state, Attempts: attempts, Node: "b"}
	}
	runs := []wire.Run{run(1, "succeeded"), run(2, "succeeded"), run(3, "failed"), run(4, "succeeded")}
	good := []wire.Delivery{rec(1, 1, 0, "delivered", 1), rec(2, 2, 0, "delivered", 3), rec(4, 4, 0, "failed", 8)}
	received := map[string]int{"dlv_1": 2, "dlv_2": 1, "dlv_4": 8}
	h := Job{Runs: runs, Execs: execsOf(runs), Entries: 1, Deliveries: good, DeliveryAttempts: 8, Received: received}
	rep := Check(h)
	if len(rep.Violations) != 0 || rep.Deliveries != 3 || rep.Redelivered != 2 || rep.DeliveryStates != "delivered=2 failed=1" {
		t.Fatalf("a good history: %+v\n%v", rep, rep.Err())
	}

	// Each case breaks one rule once (an extra record was also received).
	cases := []struct {
		name  string
		edit  func(h *Job)
		rule  string
		about string
	}{
		{"a succeeded run without its record", func(h *Job) { h.Deliveries = h.Deliveries[1:]; delete(h.Received, "dlv_1") }, "deliveries", "run 1 succeeded and has 0 delivery records for deliver[0]"},
		{"a record twice", func(h *Job) {
			h.Deliveries = append(h.Deliveries, rec(5, 1, 0, "delivered", 1))
			h.Received["dlv_5"] = 1
		}, "deliveries", "run 1 succeeded and has 2"},
		{"a record of an entry the job lacks", func(h *Job) {
			h.Deliveries = append(h.Deliveries, rec(5, 1, 1, "delivered", 1))
			h.Received["dlv_5"] = 1
		}, "deliveries", "deliver[1], which its job does not have"},
		{"a record of a failed run", func(h *Job) {
			h.Deliveries = append(h.Deliveries, rec(5, 3, 0, "delivered", 1))
			h.Received["dlv_5"] = 1
		}, "deliveries", "run 3 is failed but has 1"},
		{"a record of no run", func(h *Job) {
			h.Deliveries = append(h.Deliveries, rec(5, 9, 0, "delivered", 1))
			h.Received["dlv_5"] = 1
		}, "deliveries", "run 9, which is not in the history"},
		{"failed early", func(h *Job) { h.Deliveries[2].Attempts = 2 }, "delivery-final", "failed after 2 of its 8 attempts"},
		{"still pending", func(h *Job) { h.Deliveries[1].State = "pending" }, "delivery-final", "dlv_2 (run 2) is pending"},
		{"disabled", func(h *Job) { h.Deliveries[1].State = "disabled" }, "delivery-final", "is disabled"},
		{"delivered, never received", func(h *Job) { delete(h.Received, "dlv_2") }, "delivery-unseen", "dlv_2 (run 2) is delivered"},
		{"received, no record", func(h *Job) { h.Received["dlv_9"] = 1 }, "delivery-unseen", "no record's: [dlv_9]"},
		{"unverified", func(h *Job) { h.Unverified = 1 }, "delivery-unseen", "1 requests whose signature did not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := h
			h.Deliveries = append([]wire.Delivery(nil), good...)
			h.Received = map[string]int{}
			for k, v := range received {
				h.Received[k] = v
			}
			c.edit(&h)
			rep := Check(h)
			if len(rep.Violations) != 1 || rep.Violations[0].Rule != c.rule || !strings.Contains(rep.Violations[0].Detail, c.about) {
				t.Fatalf("violations %+v; want one [%s] saying %q", rep.Violations, c.rule, c.about)
			}
		})
	}
	// A job without entries is not judged on deliveries.
	h.Entries, h.Deliveries = 0, nil
	if rep := Check(h); len(rep.Violations) != 0 || rep.DeliveryStates != "" {
		t.Fatalf("without entries: %+v", rep.Violations)
	}
}

// execsOf is one execution line per run's final attempt, on its node.
func execsOf(runs []wire.Run) []Exec {
	out := make([]Exec, 0, len(runs))
	for i, r := range runs {
		out = append(out, Exec{Run: r.ID, Attempt: r.Attempt, Node: r.Node, At: r.CreatedAt, Line: i + 1})
	}
	return out
}
