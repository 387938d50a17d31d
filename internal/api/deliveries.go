package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// DeliveryFrom converts a stored record.
func DeliveryFrom(d store.Delivery) Delivery {
	v := Delivery{ID: d.ID, Key: d.Key(), Run: d.RunID, Notification: d.Notification, Job: d.Job, Entry: d.Entry, Channel: d.Channel, Target: auth.RedactURL(d.Spec.Target()),
		State: string(d.State), Attempts: d.Attempts, Node: d.ClaimNode, LastError: d.LastError, LastResponse: d.LastResponse,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, DeliveredAt: d.DeliveredAt}
	if d.State == store.DeliveryPending {
		t := d.NextAt
		v.NextAt = &t
	}
	for _, a := range d.History {
		v.History = append(v.History, DeliveryAttempt{N: a.N, Node: a.Node, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt,
			Outcome: string(a.Outcome), Response: a.Response, Error: a.Error})
	}
	return v
}

func (s *Server) registerDeliveries(mux *http.ServeMux) {
	s.route(mux, "GET /api/v1/deliveries", auth.Viewer, s.handle(s.deliveryList))
	s.route(mux, "GET /api/v1/deliveries/{id}", auth.Viewer, s.handle(s.deliveryGet))
	s.route(mux, "POST /api/v1/deliveries/{id}/retry", auth.Operator, s.handle(s.deliveryRetry))
}

// deliveryList reads run=, job=, state= (repeated or comma separated), limit= and before=.
func (s *Server) deliveryList(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	p := store.DeliveryListParams{Job: q.Get("job")}
	for _, st := range q["state"] {
		for _, one := range strings.Split(st, ",") {
			if !store.DeliveryState(one).Valid() {
				return 0, nil, &badRequest{"state", fmt.Sprintf("%q is not a delivery state (pending, sending, delivered, failed, disabled)", one)}
			}
			p.States = append(p.States, store.DeliveryState(one))
		}
	}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), "limit", 0, RunListLimitMax); err != nil {
		return 0, nil, err
	}
	for name, dst := range map[string]*int64{"run": &p.RunID, "before": &p.BeforeID} {
		n, err := intParam(q.Get(name), name, 0, 1<<62)
		if err != nil {
			return 0, nil, err
		}
		*dst = int64(n)
	}
	ds, err := s.store.DeliveryList(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeliveryFrom(d))
	}
	return http.StatusOK, out, nil
}

func deliveryID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &badRequest{"id", fmt.Sprintf("delivery id must be a positive whole number, got %q", r.PathValue("id"))}
	}
	return id, nil
}

func (s *Server) deliveryGet(r *http.Request) (int, any, error) {
	id, err := deliveryID(r)
	if err != nil {
		return 0, nil, err
	}
	d, err := s.store.DeliveryGet(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DeliveryFrom(d), nil
}

func (s *Server) deliveryRetry(r *http.Request) (int, any, error) {
	id, err := deliveryID(r)
	if err != nil {
		return 0, nil, err
	}
	d, err := s.store.DeliveryRetry(r.Context(), store.DeliveryRetryParams{ID: id, Now: s.now(), By: r.RemoteAddr + " through " + s.b.NodeID()})
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("delivery retried", "delivery", id, "by", r.RemoteAddr)
	return http.StatusOK, DeliveryFrom(d), nil
}
