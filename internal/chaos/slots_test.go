package chaos

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
)

// slotJobs is how many @every 200ms jobs TestSlotTakeover fires: their schedules' ids
// are consecutive, so every one of three slots gets two.
const slotJobs = 6

// Three processes with --scheduler-slots 3: the slots spread one per node; kill -9 of a
// standby's slot, then of the primary's, and each time the others take the dead node's
// slot and fire its schedules again, the takeover time logged; the victim restarted gets
// a slot back. Then every job's history is judged with the slot rules: each occurrence
// fired once across the slots' holders, none lost (the jobs run-all), none fired by a
// deposed holder.
func TestSlotTakeover(t *testing.T) {
	// Not parallel (like the timing tests of cmd/tandem): it judges takeover times of
	// real processes, which clusters starting beside it on two cores would distort.
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			f := &fixture{t: t, ctx: ctx, c: newTestCluster(t, engine, "--scheduler-slots", "3")}
			f.slotTakeover()
		})
	}
}

func (f *fixture) slotTakeover() {
	t, c := f.t, f.c
	_, err := c.Start(f.ctx, trio[0])
	f.must(err)
	_, _, err = c.WaitPrimary(f.within(15 * time.Second))
	f.must(err)
	_, err = c.StartAll(f.ctx, trio[1:]...)
	f.must(err)
	st := f.slotsOnePerNode()
	if out := f.cli("status"); !strings.Contains(out, "Firing slots") {
		t.Errorf("status does not show the slots fired:\n%s", out)
	}

	var jobs []soakJob
	for i := range slotJobs {
		j := soakJob{spec: JobSpec{Name: fmt.Sprintf("tick-%d", i), Schedule: []string{"@every " + tickEvery.String()}, Retries: 2}, step: tickEvery}
		f.must(c.Apply(f.ctx, j.spec))
		jobs = append(jobs, j)
	}
	obs := &observer{c: c}
	octx, stopObs := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { obs.run(octx, jobs) })
	defer func() { stopObs(); wg.Wait() }()
	slotOf := f.jobSlots(jobs)
	for slot := range 3 {
		if !slices.Contains(slices.Collect(maps.Values(slotOf)), slot) {
			t.Fatalf("no job in slot %d: %v", slot, slotOf)
		}
	}

	// A standby's slot, then the primary's.
	var victims []string
	for _, n := range st.Nodes {
		if n.ID != st.Primary {
			victims = append(victims, n.ID)
			break
		}
	}
	victims = append(victims, st.Primary)
	for _, id := range victims {
		f.killSlotHolder(id, slotOf)
		f.slotsOnePerNode()
	}
	stopObs()
	wg.Wait()

	names := make([]string, 0, len(jobs))
	for _, j := range jobs {
		names = append(names, j.spec.Name)
	}
	runs, err := c.Settle(f.within(30*time.Second), names...)
	f.must(err)
	starts, err := c.EpochStarts(f.ctx)
	f.must(err)
	terms, err := c.SlotTerms(f.ctx)
	f.must(err)
	var roles strings.Builder
	for _, l := range c.FindLogs(0, LogMatch{Pattern: roleLine}) {
		fmt.Fprintf(&roles, "\n  %s %s: %s", l.At.Format("15:04:05.000"), l.Node, l.Msg)
	}
	t.Logf("role and slot transitions:%s", roles.String())
	for _, j := range names {
		execs, err := c.ExecLog(j)
		f.must(err)
		rep := history.Check(history.Job{Runs: runs[j], Execs: execs, Step: tickEvery, EpochStarts: starts, Sightings: obs.sightings(j),
			Slots: 3, SlotTerms: terms})
		t.Logf("job %s (slot %d): %s", j, slotOf[j], rep.Summary())
		if err := rep.Err(); err != nil {
			t.Error(err)
		}
		if n := countState(runs[j], "failed") + countState(runs[j], "canceled"); n > 0 {
			t.Errorf("job %s: %d runs failed or were canceled: %s", j, n, history.CountStates(runs[j]))
		}
	}
}

// slotsOnePerNode waits until each of a, b and c fires one slot, and returns the status.
func (f *fixture) slotsOnePerNode() api.Status {
	f.t.Helper()
	st, err := f.c.WaitSlotsSpread(f.within(30*time.Second), 3)
	f.must(err)
	for _, n := range st.Nodes {
		if len(n.Slots) != 1 {
			f.t.Fatalf("node %s fires slots %v, want one each: %s", n.ID, n.Slots, FormatStatus(st))
		}
	}
	f.t.Logf("slots spread: %s", FormatStatus(st))
	return st
}

// jobSlots waits for a scheduled run of each job and returns each job's slot (its
// schedule id mod 3).
func (f *fixture) jobSlots(jobs []soakJob) map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, j := range jobs {
		rs, err := f.c.WaitRuns(f.within(20*time.Second), j.spec.Name, "a scheduled run", func(rs []api.Run) bool {
			return len(rs) > 0 && rs[0].ScheduleID > 0
		})
		f.must(err)
		out[j.spec.Name] = int(rs[0].ScheduleID % 3)
	}
	return out
}

// killSlotHolder kills id with kill -9 and measures how long until another node fires
// its slot: the status shows the slot's new holder, and a run of each of the slot's jobs
// is created after the kill. Then it restarts id.
func (f *fixture) killSlotHolder(id string, slotOf map[string]int) {
	f.t.Helper()
	c := f.c
	st, err := c.Status(f.ctx)
	f.must(err)
	role := "standby"
	if st.Primary == id {
		role = "primary"
	}
	var slot string
	for s, holder := range SlotHolders(st) {
		if holder == id {
			slot = s
		}
	}
	n, err := strconv.Atoi(slot)
	f.must(err)
	var mine []string
	for j, s := range slotOf {
		if s == n {
			mine = append(mine, j)
		}
	}
	slices.Sort(mine)
	f.waitSlotFired(mine, time.Time{}, 3)
	mark, t0 := c.Mark(), time.Now()
	f.must(c.Node(id).Kill())
	dead := time.Now() // what the victim fired committed before this
	l, err := c.WaitLog(f.within(10*time.Second), mark, LogMatch{Pattern: regexp.MustCompile(`^firing slot ` + slot + ` of 3 `)})
	f.must(err)
	took := l.At.Sub(t0)
	if l.Node == id {
		f.t.Fatalf("the killed node %s took its slot again: %s", id, l)
	}
	if took >= time.Second {
		f.t.Errorf("slot takeover took %s, want well under 1s (crash fast path; the lease TTL is %s)", took, ttl)
	}
	st, err = c.WaitStatus(f.within(10*time.Second), fmt.Sprintf("slot %s held by a node other than %s", slot, id), func(st api.Status) bool {
		h := SlotHolders(st)[slot]
		return h != "" && h != id
	})
	f.must(err)
	held := time.Since(t0)
	by := SlotHolders(st)[slot]
	first := f.waitSlotFired(mine, dead, 1)
	fired := time.Since(t0)
	f.t.Logf("slot takeover: kill -9 of %s (%s, slot %s); %s took the slot %s after (its log line: %s); status showed it after %s; the slot's jobs %v fired again after %s (first run created %s after the kill)",
		id, role, slot, l.Node, took.Round(time.Millisecond), l.Msg, held.Round(time.Millisecond), strings.Join(mine, ","), fired.Round(time.Millisecond), first.Sub(t0).Round(time.Millisecond))
	if by != l.Node {
		f.t.Errorf("%s logged taking slot %s, but the status shows %s holding it", l.Node, slot, by)
	}
	// Firing goes on: each of the slot's jobs has runs fired after the kill succeed.
	f.waitSlotFired(mine, dead, 5)
	f.must(c.Node(id).Restart(f.ctx))
	_, err = c.WaitMode(f.within(30*time.Second), id, "standby")
	f.must(err)
}

// waitSlotFired waits until each job has n succeeded scheduled runs created after t0 (on
// the nodes' clocks, on this host the harness's), and returns the earliest creation of
// those runs.
func (f *fixture) waitSlotFired(jobs []string, t0 time.Time, n int) time.Time {
	f.t.Helper()
	var first time.Time
	for _, j := range jobs {
		err := Poll(f.within(20*time.Second), 10*time.Millisecond, fmt.Sprintf("%d runs of %s created after %s", n, j, t0.Format("15:04:05.000")), func(ctx context.Context) (bool, string, error) {
			rs, err := f.c.Client().RunList(ctx, client.RunListParams{Job: j, Limit: 50})
			if err != nil {
				return false, "", err
			}
			k := 0
			for _, r := range rs {
				if r.ScheduledAt != nil && r.CreatedAt.After(t0) && (n == 1 || r.State == "succeeded") {
					k++
					if first.IsZero() || r.CreatedAt.Before(first) {
						first = r.CreatedAt
					}
				}
			}
			return k >= n, fmt.Sprintf("%d so far", k), nil
		})
		f.must(err)
	}
	return first
}
