package history

import (
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/api/wire"
)

func someNotifications() *Notifications {
	return &Notifications{
		Rules: []wire.Rule{
			{Name: "lost", On: []string{"node.lost"}, SinceEvent: 1},
			{Name: "failed", On: []string{"run.failed"}, When: "data.attempt >= data.max_attempts"},
		},
		Events: []wire.Event{
			{ID: 1, Type: "node.lost", Data: map[string]any{"node": "a"}}, // before the rule
			{ID: 2, Type: "node.lost", Data: map[string]any{"node": "b"}},
			{ID: 3, Type: "run.failed", Data: map[string]any{"attempt": 2.0, "max_attempts": 2.0}},
			{ID: 4, Type: "run.failed", Data: map[string]any{"attempt": 1.0, "max_attempts": 2.0}}, // the condition is false
		},
		Notifications: []wire.Notification{
			{ID: 1, Rule: "lost", Event: 2, EventType: "node.lost", Kind: "notice"},
			{ID: 2, Rule: "failed", Event: 3, EventType: "run.failed", Kind: "notice"},
			{ID: 3, Rule: "lost", Event: 2, EventType: "node.lost", Kind: "digest"}, // digests are not notices
		},
	}
}

// A history where every matching event has one notice passes.
func TestCheckNotificationsGood(t *testing.T) {
	t.Parallel()
	if rep := Check(Job{Notify: someNotifications()}); rep.Err() != nil || rep.Notifications != 3 {
		t.Fatalf("good history: %v (%d notifications)", rep.Err(), rep.Notifications)
	}
}

// A duplicate notice, a missing one and a notice of an event that does not match are
// each caught.
func TestCheckNotificationsBad(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		change func(h *Notifications)
		want   string
	}{
		"duplicate": {func(h *Notifications) {
			h.Notifications = append(h.Notifications, wire.Notification{ID: 9, Rule: "lost", Event: 2, Kind: "notice"})
		}, "event 2 (node.lost: ) matches rule lost but has 2 notice records"},
		"missing": {func(h *Notifications) {
			h.Notifications = h.Notifications[1:]
		}, "event 2 (node.lost: ) matches rule lost but has 0 notice records"},
		"not matching": {func(h *Notifications) {
			h.Notifications = append(h.Notifications, wire.Notification{ID: 9, Rule: "failed", Event: 4, EventType: "run.failed", Kind: "notice"})
		}, "notification 9 of rule failed is about event 4"},
		"before the rule": {func(h *Notifications) {
			h.Notifications = append(h.Notifications, wire.Notification{ID: 9, Rule: "lost", Event: 1, EventType: "node.lost", Kind: "notice"})
		}, "notification 9 of rule lost is about event 1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := someNotifications()
			c.change(h)
			rep := Check(Job{Notify: h})
			if len(rep.Violations) != 1 || rep.Violations[0].Rule != "notifications" || !strings.Contains(rep.Violations[0].Detail, c.want) {
				t.Fatalf("violations %+v; want one notifications violation containing %q", rep.Violations, c.want)
			}
		})
	}
}
