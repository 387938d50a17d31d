package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos/history"
)

// PollEvery is how often the waits of this package look again.
const PollEvery = 20 * time.Millisecond

// Poll calls cond every interval until it reports true, and returns nil then. An error
// from cond does not end the wait (a node may not answer during a failover); when ctx
// ends first, the error names what was awaited, with cond's last note and any error
// after it. Each call of cond gets a context bounded by CallTimeout.
func Poll(ctx context.Context, every time.Duration, what string, cond func(ctx context.Context) (ok bool, note string, err error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen, failed string
	for {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		ok, note, err := cond(cctx)
		cancel()
		switch {
		case err != nil:
			failed = err.Error()
		case ok:
			return nil
		default:
			seen, failed = note, ""
		}
		select {
		case <-ctx.Done():
			// What was last seen explains a timeout best; an error since then (often the
			// deadline cutting the last call short) is added, not substituted.
			var last []string
			if seen != "" {
				last = append(last, "last seen: "+seen)
			}
			if failed != "" {
				last = append(last, "last error: "+failed)
			}
			return fmt.Errorf("wait for %s: %w (%s)", what, ctx.Err(), strings.Join(last, "; "))
		case <-t.C:
		}
	}
}

// WaitStatus polls the status table until cond holds, and returns that table.
func (c *Cluster) WaitStatus(ctx context.Context, what string, cond func(api.Status) bool) (api.Status, error) {
	var got api.Status
	err := Poll(ctx, PollEvery, what, func(ctx context.Context) (bool, string, error) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, "", err
		}
		got = st
		return cond(st), FormatStatus(st), nil
	})
	return got, err
}

// WaitPrimary waits until a node other than the ones named holds the primary role, and
// returns it and its epoch.
func (c *Cluster) WaitPrimary(ctx context.Context, except ...string) (string, int64, error) {
	what := "a primary"
	if len(except) > 0 {
		what = "a primary other than " + strings.Join(except, ", ")
	}
	st, err := c.WaitStatus(ctx, what, func(st api.Status) bool {
		return st.Primary != "" && !slices.Contains(except, st.Primary)
	})
	if err != nil {
		return "", 0, err
	}
	return st.Primary, st.Epoch, nil
}

// WaitMode waits until the status table shows node in mode.
func (c *Cluster) WaitMode(ctx context.Context, node, mode string) (api.Status, error) {
	return c.WaitStatus(ctx, fmt.Sprintf("node %s in mode %s", node, mode), func(st api.Status) bool {
		return ModeOf(st, node) == mode
	})
}

// ModeOf is node's mode in a status table, or "" if it is not listed.
func ModeOf(st api.Status, node string) string {
	for _, n := range st.Nodes {
		if n.ID == node {
			return n.Mode
		}
	}
	return ""
}

// FormatStatus renders a status table on one line: primary, epoch, and each node's mode.
func FormatStatus(st api.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "primary=%q epoch=%d", st.Primary, st.Epoch)
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, " %s:%s(run %d/%d, q %d", n.ID, n.Mode, n.Running, n.Capacity, n.Queued)
		if len(n.Slots) > 0 {
			fmt.Fprintf(&b, ", slots %s", strings.Join(n.Slots, ","))
		}
		b.WriteString(")")
	}
	return b.String()
}

// WaitRuns polls a job's runs until cond holds, and returns them (newest first).
func (c *Cluster) WaitRuns(ctx context.Context, job, what string, cond func([]api.Run) bool) ([]api.Run, error) {
	var got []api.Run
	err := Poll(ctx, 50*time.Millisecond, what, func(ctx context.Context) (bool, string, error) {
		rs, err := c.Runs(ctx, job)
		if err != nil {
			return false, "", err
		}
		got = rs
		return cond(rs), fmt.Sprintf("%d runs of %s: %s", len(rs), job, history.CountStates(rs)), nil
	})
	return got, err
}

// Quiet is how long Settle wants to see no new run of a paused job: a pause reaches the
// primary's scheduler within its configuration check (1s), and a firing that started
// before the pause may still commit.
const Quiet = 2 * time.Second

// Settle pauses the jobs (schedules stop firing) and waits until every run of each is
// final and none was created for Quiet. It returns each job's runs from that last look,
// newest first, so a history check sees one consistent snapshot.
func (c *Cluster) Settle(ctx context.Context, jobs ...string) (map[string][]api.Run, error) {
	for _, j := range jobs {
		err := Poll(ctx, 100*time.Millisecond, "job "+j+" paused", func(ctx context.Context) (bool, string, error) {
			_, err := c.Client().JobPause(ctx, j, true)
			return err == nil, "", err
		})
		if err != nil {
			return nil, fmt.Errorf("settle jobs: %w", err)
		}
	}
	out := map[string][]api.Run{}
	for _, j := range jobs {
		var rs []api.Run
		err := Poll(ctx, 50*time.Millisecond, "runs of "+j+" to settle", func(ctx context.Context) (bool, string, error) {
			var err error
			if rs, err = c.Runs(ctx, j); err != nil {
				return false, "", err
			}
			// The note names the runs that are not final, for the timeout's message.
			var open []string
			quiet := true
			for _, r := range rs {
				if !history.Final(r.State) {
					open = append(open, history.FormatRun(r))
				}
				quiet = quiet && time.Since(r.CreatedAt) >= Quiet
			}
			note := fmt.Sprintf("%d runs of %s: %s; not final: [%s]", len(rs), j, history.CountStates(rs), strings.Join(open, "; "))
			return len(open) == 0 && quiet, note, nil
		})
		if err != nil {
			return nil, fmt.Errorf("settle jobs: %w", err)
		}
		out[j] = rs
	}
	return out, nil
}

// SlotHolders maps each scheduler slot ("0", "1", …) to the node the status table shows
// firing it; empty with a single slot.
func SlotHolders(st api.Status) map[string]string {
	out := map[string]string{}
	for _, n := range st.Nodes {
		for _, s := range n.Slots {
			out[s] = n.ID
		}
	}
	return out
}

// WaitSlotsSpread waits until the status table shows every one of count scheduler slots
// held, spread over the nodes that may fire (primary, suspended, standby): none holds
// more than one slot above another. It returns that table.
func (c *Cluster) WaitSlotsSpread(ctx context.Context, count int) (api.Status, error) {
	return c.WaitStatus(ctx, fmt.Sprintf("%d scheduler slots held and spread", count), func(st api.Status) bool {
		if len(SlotHolders(st)) != count {
			return false
		}
		lo, hi := count, 0
		for _, n := range st.Nodes {
			if n.Mode == "primary" || n.Mode == "suspended" || n.Mode == "standby" {
				lo, hi = min(lo, len(n.Slots)), max(hi, len(n.Slots))
			}
		}
		return hi-lo <= 1
	})
}
