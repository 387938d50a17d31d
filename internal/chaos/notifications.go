package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
)

// soakRules are the rules the soak applies: recorded only (no channel), so that what
// is judged is the notifier's exactly-once, not a mail server.
const soakRules = `
[[rule]]
name = "soak-nodes"
on   = ["node.lost", "node.joined", "primary.changed"]
key  = "{{.Node}}"

[[rule]]
name = "soak-failed"
on   = ["run.failed", "delivery.failed"]
when = 'type != "run.failed" || data.attempt >= data.max_attempts'
`

// settleNotifications reads the rules, their events and the notifications until every
// matching event has its notice (the notifier caught up) or nothing changed for
// settleStall; the check reports what is left.
func settleNotifications(ctx context.Context, c *Cluster, progress func(string, ...any)) (*history.Notifications, error) {
	var last *history.Notifications
	lastCount, lastChange := -1, time.Now()
	for {
		h, err := readNotifications(ctx, c)
		if err == nil {
			last = h
			// A history of notifications alone is judged by the notifications rule alone.
			if len(history.Check(history.Job{Notify: h}).Violations) == 0 {
				return h, nil
			}
			if len(h.Notifications) != lastCount {
				lastCount, lastChange = len(h.Notifications), time.Now()
			}
		}
		if time.Since(lastChange) > settleStall {
			if last == nil {
				return nil, fmt.Errorf("settle notifications: %w", err)
			}
			progress("notifications did not settle in %s", settleStall)
			return last, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("settle notifications: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func readNotifications(ctx context.Context, c *Cluster) (*history.Notifications, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*CallTimeout)
	defer cancel()
	cl := c.Client()
	rules, err := cl.RuleList(cctx)
	if err != nil {
		return nil, err
	}
	h := &history.Notifications{Rules: rules}
	types := map[string]bool{}
	for _, r := range rules {
		for _, t := range r.On {
			types[t] = true
		}
	}
	for t := range types {
		evs, err := cl.Events(cctx, t, api.RunListLimitMax)
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, evs...)
	}
	var before int64
	for {
		ns, err := cl.NotificationList(cctx, client.NotificationListParams{Limit: api.RunListLimitMax, Before: before})
		if err != nil {
			return nil, err
		}
		h.Notifications = append(h.Notifications, ns...)
		if len(ns) < api.RunListLimitMax {
			return h, nil
		}
		before = ns[len(ns)-1].ID
	}
}
