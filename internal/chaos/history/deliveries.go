package history

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// checkDeliveries judges the delivery records of a job whose every entry is delivered on
// success (Job.Entries of them) against its runs and what the receiver saw:
//
//	deliveries: a succeeded run has other than exactly one record per entry, or a run
//	    that did not succeed, or one not in the history, has a record;
//	delivery-final: a record is not delivered or failed, or it failed before it spent its
//	    Job.DeliveryAttempts attempts;
//	delivery-unseen: the receiver never accepted a delivered record's key, or the
//	    receiver got a key that is no record's, or a request it could not verify.
func checkDeliveries(h Job, byID map[int64]wire.Run, rep *Report, add func(string, string, []wire.Run)) {
	if h.Entries <= 0 {
		return
	}
	around := func(id int64) []wire.Run {
		if r, ok := byID[id]; ok {
			return []wire.Run{r}
		}
		return nil
	}
	rep.Deliveries = len(h.Deliveries)
	byRun := map[int64][]wire.Delivery{}
	keys := map[string]bool{}
	for _, d := range h.Deliveries {
		byRun[d.Run] = append(byRun[d.Run], d)
		keys[d.Key] = true
	}
	runs := slices.Sorted(maps.Keys(byID))
	for _, id := range runs {
		r := byID[id]
		ds := byRun[id]
		if r.State != "succeeded" {
			if len(ds) > 0 {
				add("deliveries", fmt.Sprintf("run %d is %s but has %d delivery records (its entries are delivered on success only)", id, r.State, len(ds)), around(id))
			}
			continue
		}
		per := map[int]int{}
		for _, d := range ds {
			per[d.Entry]++
		}
		for e := range h.Entries {
			if per[e] != 1 {
				add("deliveries", fmt.Sprintf("run %d succeeded and has %d delivery records for deliver[%d], want 1", id, per[e], e), around(id))
			}
			delete(per, e)
		}
		for e, k := range per {
			add("deliveries", fmt.Sprintf("run %d has %d delivery records for deliver[%d], which its job does not have", id, k, e), around(id))
		}
	}
	for id, ds := range byRun {
		if _, ok := byID[id]; !ok {
			add("deliveries", fmt.Sprintf("%d delivery records (%s…) belong to run %d, which is not in the history", len(ds), ds[0].Key, id), nil)
		}
	}
	states := map[string]int{}
	for _, d := range h.Deliveries {
		states[d.State]++
		switch {
		case d.State == "failed" && d.Attempts < h.DeliveryAttempts:
			add("delivery-final", fmt.Sprintf("%s (run %d) failed after %d of its %d attempts: %s", d.Key, d.Run, d.Attempts, h.DeliveryAttempts, d.LastError), around(d.Run))
		case d.State != "delivered" && d.State != "failed":
			add("delivery-final", fmt.Sprintf("%s (run %d) is %s after the cluster settled (attempts %d, node %q, last error %q)", d.Key, d.Run, d.State, d.Attempts, d.Node, d.LastError), around(d.Run))
		case d.State == "delivered" && h.Received[d.Key] == 0:
			add("delivery-unseen", fmt.Sprintf("%s (run %d) is delivered (by %s at %v) but the receiver never accepted it", d.Key, d.Run, d.Node, d.DeliveredAt), around(d.Run))
		}
	}
	var unknown []string
	for k, n := range h.Received {
		if n > 1 {
			rep.Redelivered++
		}
		if !keys[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	if len(unknown) > 0 {
		add("delivery-unseen", fmt.Sprintf("the receiver got webhook-ids that are no record's: %v", unknown), nil)
	}
	if h.Unverified > 0 {
		add("delivery-unseen", fmt.Sprintf("the receiver got %d requests whose signature did not verify", h.Unverified), nil)
	}
	rep.DeliveryStates = fmt.Sprintf("delivered=%d failed=%d", states["delivered"], states["failed"])
	for _, s := range []string{"pending", "sending", "disabled"} {
		if states[s] > 0 {
			rep.DeliveryStates += fmt.Sprintf(" %s=%d", s, states[s])
		}
	}
}
