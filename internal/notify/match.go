package notify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr"

	"github.com/tandemhq/tandem/internal/store"
)

// FromStore is an event as rules see it: Node is the node it is about (data.node when
// the event has one), By the node that recorded it.
func FromStore(e store.Event) Event {
	ev := Event{ID: e.ID, Type: e.Type, Node: e.Node, By: e.Node, At: e.At, Message: e.Message, Data: e.Data}
	if n, ok := e.Data["node"].(string); ok && n != "" {
		ev.Node = n
	}
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	return ev
}

// Match reports whether the rule notifies about ev: ev is of a type in On, later than
// the rule, not a failure of this rule's own notifications, and the condition holds.
// An error is the condition failing at run time (a rule that cannot judge the event
// does not match it; the notifier logs the error).
func (r *Rule) Match(ev Event) (bool, error) {
	if ev.ID <= r.SinceEvent || !slices.Contains(r.Spec.On, ev.Type) {
		return false, nil
	}
	if r.OwnFailure(ev) {
		return false, nil
	}
	if r.when == nil {
		return true, nil
	}
	out, err := expr.Run(r.when, envValue(r.env, ev).Interface())
	if err != nil {
		return false, fmt.Errorf("rule %s: condition on event %d: %w", r.Spec.Name, ev.ID, err)
	}
	b, _ := out.(bool)
	return b, nil
}

// OwnFailure reports whether ev is the failure of one of this rule's own
// notifications: a rule is never notified of those, so a channel that is down cannot
// make a loop of notices about notices.
func (r *Rule) OwnFailure(ev Event) bool {
	if !strings.HasPrefix(ev.Type, "delivery.") {
		return false
	}
	rule, _ := ev.Data["rule"].(string)
	return rule != "" && rule == r.Spec.Name
}

// Message is what the rule would send about an event.
type Message struct {
	Key     string
	Subject string
	Body    string
}

// Render runs the rule's templates over ev.
func (r *Rule) Render(ev Event) (Message, error) {
	d := Template{Event: ev, Rule: r.Spec.Name}.data()
	var m Message
	var b strings.Builder
	if err := r.key.Execute(&b, d); err != nil {
		return m, fmt.Errorf("rule %s: key: %w", r.Spec.Name, err)
	}
	m.Key = b.String()
	b.Reset()
	if err := r.subject.Execute(&b, d); err != nil {
		return m, fmt.Errorf("rule %s: subject: %w", r.Spec.Name, err)
	}
	m.Subject = strings.Join(strings.Fields(b.String()), " ") // one header line
	b.Reset()
	if err := r.body.Execute(&b, d); err != nil {
		return m, fmt.Errorf("rule %s: body: %w", r.Spec.Name, err)
	}
	m.Body = b.String()
	return m, nil
}
