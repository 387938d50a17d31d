package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
)

func (c *Console) registerEvents(mux *http.ServeMux) {
	c.route(mux, "GET /events", auth.Viewer, c.eventsPage)
	c.route(mux, "GET /stream/events", auth.Viewer, c.eventsStream)
	c.route(mux, "GET /deliveries", auth.Viewer, c.deliveriesPage)
	c.route(mux, "POST /deliveries/{id}/retry", auth.Operator, c.deliveryRetry)
	c.route(mux, "GET /rules", auth.Viewer, c.rulesPage)
}

// EventsShown is how many events the events page shows.
const EventsShown = 200

type eventsData struct {
	pageData
	Type, Node string
	Events     []api.Event
}

func (c *Console) eventsData(r *http.Request) (eventsData, error) {
	q := r.URL.Query()
	d := eventsData{pageData: c.basePage(r, "Events"), Type: q.Get("type"), Node: q.Get("node")}
	d.Stream = "/stream/events?" + url.Values{"type": {d.Type}, "node": {d.Node}}.Encode()
	var evs []api.Event
	aq := url.Values{"limit": {strconv.Itoa(EventsShown)}}
	if d.Type != "" {
		aq.Set("type", d.Type)
	}
	if err := c.call(r, http.MethodGet, "/api/v1/events?"+aq.Encode(), nil, &evs); err != nil {
		return d, err
	}
	for _, e := range evs {
		if d.Node == "" || strings.EqualFold(e.Node, d.Node) {
			d.Events = append(d.Events, e)
		}
	}
	return d, nil
}

// eventsPage shows the latest events, filtered by type and node, kept live.
func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.eventsData(r)
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	c.render(w, http.StatusOK, "events", d)
}

func (c *Console) eventsStream(w http.ResponseWriter, r *http.Request) {
	c.serveStream(w, r, c.every(r, liveEvery, func(yield func(name, html string) error) error {
		d, err := c.eventsData(r)
		if err != nil {
			return nil
		}
		html, err := c.fragment("events", "event-rows", d)
		if err != nil {
			return err
		}
		return yield("events", html)
	}))
}

type deliveriesData struct {
	pageData
	Job, State string
	Deliveries []api.Delivery
}

// deliveriesPage lists delivery records, newest first, by job and state.
func (c *Console) deliveriesPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := deliveriesData{pageData: c.basePage(r, "Deliveries"), Job: q.Get("job"), State: q.Get("state")}
	aq := url.Values{"limit": {"200"}}
	if d.Job != "" {
		aq.Set("job", d.Job)
	}
	if d.State != "" {
		aq.Set("state", d.State)
	}
	if err := c.call(r, http.MethodGet, "/api/v1/deliveries?"+aq.Encode(), nil, &d.Deliveries); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	c.render(w, http.StatusOK, "deliveries", d)
}

func (c *Console) deliveryRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := c.call(r, http.MethodPost, "/api/v1/deliveries/"+url.PathEscape(id)+"/retry", nil, nil)
	back(w, r, "/deliveries", "delivery "+id+": sent again", err)
}

type rulesData struct {
	pageData
	Rules         []api.Rule
	Notifications []api.Notification
}

// rulesPage lists the event rules and the latest notifications they made.
func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request) {
	d := rulesData{pageData: c.basePage(r, "Rules")}
	if err := c.call(r, http.MethodGet, "/api/v1/rules", nil, &d.Rules); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	if err := c.call(r, http.MethodGet, "/api/v1/notifications?limit=50", nil, &d.Notifications); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	c.render(w, http.StatusOK, "rules", d)
}
