package history

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/notify"
	"github.com/tandemhq/tandem/internal/store"
)

func toStoreEvent(e wire.Event) store.Event {
	return store.Event{ID: e.ID, Type: e.Type, At: e.At, Node: e.Node, Message: e.Message, Data: e.Data}
}

// Notifications is what the notification rule judges: the rules, every event of the
// types they are on, and every notification, once the notifier caught up.
type Notifications struct {
	Rules         []wire.Rule
	Events        []wire.Event
	Notifications []wire.Notification
}

// checkNotifications judges that every event matching a rule produced exactly one
// notice record of that rule, and that every notice record is of a matching event in
// the log:
//
//	notifications: a matching event with no notice record or more than one, or a
//	    notice of an event that does not match (or is not in the log).
//
// Digests are not judged here (they sum up suppressed notices, which are records too).
func checkNotifications(h *Notifications, rep *Report, add func(string, string, []wire.Run)) {
	if h == nil {
		return
	}
	rep.Notifications = len(h.Notifications)
	events := map[int64]wire.Event{}
	for _, e := range h.Events {
		events[e.ID] = e
	}
	type key struct {
		rule  string
		event int64
	}
	count := map[key]int{}
	for _, n := range h.Notifications {
		if n.Kind == "notice" {
			count[key{n.Rule, n.Event}]++
		}
	}
	for _, ar := range h.Rules {
		r, err := notify.Compile(notify.Spec{Name: ar.Name, On: ar.On, When: ar.When})
		if err != nil {
			add("notifications", fmt.Sprintf("rule %s does not compile: %v", ar.Name, err), nil)
			continue
		}
		r.SinceEvent = ar.SinceEvent
		ids := slices.Sorted(maps.Keys(events))
		matched := map[int64]bool{}
		for _, id := range ids {
			e := events[id]
			ok, _ := r.Match(notify.FromStore(toStoreEvent(e)))
			if !ok {
				continue
			}
			matched[id] = true
			if k := count[key{ar.Name, id}]; k != 1 {
				add("notifications", fmt.Sprintf("event %d (%s: %s) matches rule %s but has %d notice records", id, e.Type, e.Message, ar.Name, k), nil)
			}
		}
		for _, n := range h.Notifications {
			if n.Rule == ar.Name && n.Kind == "notice" && !matched[n.Event] {
				add("notifications", fmt.Sprintf("notification %d of rule %s is about event %d (%s), which does not match it or is not in the log", n.ID, n.Rule, n.Event, n.EventType), nil)
			}
		}
	}
}
