package api

import (
	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"

	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/notify"
	"github.com/tandemhq/tandem/internal/store"
)

// RuleFrom converts a stored rule.
func RuleFrom(r store.Rule) (Rule, error) {
	s, err := notify.Decode(r.Spec)
	if err != nil {
		return Rule{}, err
	}
	v := Rule{Name: r.Name, On: s.On, When: s.When, Repeat: s.Repeat.String(), Key: s.Key,
		SinceEvent: r.SinceEvent, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if v.Key == "" {
		v.Key = notify.KeyDefault
	}
	if e := s.Email; e != nil {
		v.Email = &wire.RuleEmail{To: e.To, CC: e.CC, BCC: e.BCC, Subject: e.Subject, Body: e.Body}
	}
	if w := s.Webhook; w != nil {
		c := wire.RuleWebhook{URL: w.URL, Secret: w.Secret, Timeout: w.Timeout}
		if c.Secret != "" {
			c.Secret = "whsec_…" // set; not shown
		}
		v.Webhook = &c
	}
	return v, nil
}

// NotificationFrom converts a stored notification.
func NotificationFrom(n store.Notification) Notification {
	v := Notification{ID: n.ID, Rule: n.Rule, Event: n.EventID, EventType: n.EventType, Kind: n.Kind, Key: n.Key, State: n.State,
		Subject: n.Subject, Count: n.Count, Epoch: n.Epoch, Node: n.Node, CreatedAt: n.CreatedAt}
	if n.Deliveries != nil {
		v.Body = n.Body
		for _, d := range n.Deliveries {
			v.Deliveries = append(v.Deliveries, DeliveryFrom(d))
		}
	}
	return v
}

func (s *Server) registerRules(mux *http.ServeMux) {
	s.route(mux, "GET /api/v1/rules", auth.Viewer, s.handle(s.ruleList))
	s.route(mux, "POST /api/v1/rules", auth.Admin, s.handle(s.ruleApply))
	s.route(mux, "GET /api/v1/rules/{name}", auth.Viewer, s.handle(s.ruleGet))
	s.route(mux, "DELETE /api/v1/rules/{name}", auth.Admin, s.handle(s.ruleDelete))
	s.route(mux, "GET /api/v1/rules/{name}/test", auth.Viewer, s.handle(s.ruleTest))
	s.route(mux, "GET /api/v1/notifications", auth.Viewer, s.handle(s.notificationList))
	s.route(mux, "GET /api/v1/notifications/{id}", auth.Viewer, s.handle(s.notificationGet))
}

// ruleApply reads a rule file (TOML) and applies all its rules or none.
func (s *Server) ruleApply(r *http.Request) (int, any, error) {
	data, err := readBody(r, MaxBodyBytes)
	if err != nil {
		return 0, nil, fmt.Errorf("read rule file: %w", err)
	}
	specs, err := notify.Parse(data)
	if err != nil {
		var ps notify.Problems
		if errors.As(err, &ps) {
			return 0, nil, &badRequest{ps[0].Field, err.Error()}
		}
		return 0, nil, &badRequest{"body", err.Error()}
	}
	p := store.RuleApplyParams{Now: s.now()}
	for _, sp := range specs {
		b, err := sp.Encode()
		if err != nil {
			return 0, nil, err
		}
		p.Rules = append(p.Rules, store.RuleDef{Name: sp.Name, Spec: b})
	}
	res, err := s.store.RuleApply(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := make([]RuleApplyResult, 0, len(res))
	code := http.StatusOK
	for _, a := range res {
		v, err := RuleFrom(a.Rule)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, RuleApplyResult{Name: a.Rule.Name, Created: a.Created, Rule: v})
		if a.Created {
			code = http.StatusCreated
		}
		s.log.Info("rule applied", "rule", a.Rule.Name, "created", a.Created)
	}
	return code, out, nil
}

func (s *Server) ruleList(r *http.Request) (int, any, error) {
	rules, err := s.store.RuleList(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]Rule, 0, len(rules))
	for _, ru := range rules {
		v, err := RuleFrom(ru)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, v)
	}
	return http.StatusOK, out, nil
}

func (s *Server) ruleGet(r *http.Request) (int, any, error) {
	ru, err := s.store.RuleGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	v, err := RuleFrom(ru)
	return http.StatusOK, v, err
}

func (s *Server) ruleDelete(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := s.store.RuleDelete(r.Context(), name); err != nil {
		return 0, nil, err
	}
	s.log.Info("rule deleted", "rule", name)
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

// ruleTest judges the stored event event= by the rule and shows the message it would
// send, sending nothing.
func (s *Server) ruleTest(r *http.Request) (int, any, error) {
	id, err := strconv.ParseInt(r.URL.Query().Get("event"), 10, 64)
	if err != nil || id <= 0 {
		return 0, nil, &badRequest{"event", fmt.Sprintf("event must be an event id, got %q", r.URL.Query().Get("event"))}
	}
	ru, err := s.store.RuleGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	rule, err := notify.Load(ru)
	if err != nil {
		return 0, nil, fmt.Errorf("rule %s does not compile: %w", ru.Name, err)
	}
	se, err := s.store.EventGet(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	ev := notify.FromStore(se)
	out := RuleTest{Rule: ru.Name, Event: Event{ID: se.ID, Type: se.Type, At: se.At, Node: se.Node, Message: se.Message, Data: se.Data},
		Notifications: []Notification{}}
	rule.SinceEvent = 0 // a test judges any stored event, also those older than the rule
	matched, err := rule.Match(ev)
	switch {
	case err != nil:
		out.Why = err.Error()
	case !matched && !containsString(rule.Spec.On, ev.Type):
		out.Why = fmt.Sprintf("the rule is on %s, not %s", strings.Join(rule.Spec.On, ", "), ev.Type)
	case !matched && rule.OwnFailure(ev):
		out.Why = "the event is the failure of this rule's own notification: a rule is never notified of those"
	case !matched:
		out.Why = fmt.Sprintf("the condition %q is false for this event", rule.Spec.When)
	default:
		out.Matched, out.Why = true, "the event is of a type the rule is on"
		if rule.Spec.When != "" {
			out.Why += fmt.Sprintf(" and the condition %q holds", rule.Spec.When)
		}
		m, err := rule.Render(ev)
		if err != nil {
			return 0, nil, err
		}
		out.Key, out.Subject, out.Body = m.Key, m.Subject, m.Body
		for _, c := range rule.Channels() {
			out.Channels = append(out.Channels, c.Channel()+" "+c.Target())
		}
		if ru.SinceEvent >= ev.ID {
			out.Why += fmt.Sprintf("; but the rule was made after event %d and judges only later ones", ru.SinceEvent)
		}
	}
	ns, err := s.store.NotificationList(r.Context(), store.NotificationListParams{Rule: ru.Name, EventID: id})
	if err != nil {
		return 0, nil, err
	}
	for _, n := range ns {
		out.Notifications = append(out.Notifications, NotificationFrom(n))
	}
	return http.StatusOK, out, nil
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// notificationList reads rule=, event=, limit= and before=.
func (s *Server) notificationList(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	p := store.NotificationListParams{Rule: q.Get("rule")}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), "limit", 0, RunListLimitMax); err != nil {
		return 0, nil, err
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"event", &p.EventID}, {"before", &p.BeforeID}} {
		if v := q.Get(f.name); v != "" {
			if *f.dst, err = strconv.ParseInt(v, 10, 64); err != nil || *f.dst <= 0 {
				return 0, nil, &badRequest{f.name, fmt.Sprintf("%s must be a positive id, got %q", f.name, v)}
			}
		}
	}
	ns, err := s.store.NotificationList(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Notification, 0, len(ns))
	for _, n := range ns {
		out = append(out, NotificationFrom(n))
	}
	return http.StatusOK, out, nil
}

func (s *Server) notificationGet(r *http.Request) (int, any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, nil, &badRequest{"id", fmt.Sprintf("notification id must be a positive whole number, got %q", r.PathValue("id"))}
	}
	n, err := s.store.NotificationGet(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	if n.Deliveries == nil {
		n.Deliveries = []store.Delivery{}
	}
	return http.StatusOK, NotificationFrom(n), nil
}
