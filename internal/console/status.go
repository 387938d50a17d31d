package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/cluster"
)

// action is a button that opens a confirmation: what it does, said before it is done.
type action struct {
	Name    string // suspend, resume, standby, release, stop, restart, switch
	Label   string
	Title   string // the dialog's question
	Text    string // what will happen
	Path    string // where the form posts
	Fields  string // hidden fields of the form, as a query string
	Confirm string // the confirming button's label
	Danger  bool
	Href    string // the page that asks without JavaScript ("": the confirm page)
}

// ConfirmHref is the page that asks without JavaScript.
func (a action) ConfirmHref() string {
	if a.Href != "" {
		return a.Href
	}
	return "/confirm?" + url.Values{"path": {a.Path}, "fields": {a.Fields}, "name": {a.Name}}.Encode()
}

type nodeRow struct {
	api.NodeStatus
	Age, Uptime string
	Stale       bool // the heartbeat is older than a few beats
	Actions     []action
}

type statusData struct {
	pageData
	Primary   string
	Epoch     int64
	Suspended *api.Hold
	Nodes     []nodeRow
	Error     string
	Now       time.Time
}

// nodeActions are the actions on a node in its mode that the role allows, each saying
// what it will do.
func nodeActions(st api.Status, n api.NodeStatus, canOperate, canAdmin bool) []action {
	if !canOperate {
		return nil
	}
	var out []action
	op := func(name, label, title, text string) {
		out = append(out, action{Name: name, Label: label, Title: title, Text: text, Path: "/nodes/" + url.PathEscape(n.ID) + "/" + nodeActionPath(name), Confirm: label})
	}
	switch n.Mode {
	case cluster.ModePrimary:
		op("suspend", "Suspend", fmt.Sprintf("Suspend the primary role on %s?", n.ID),
			fmt.Sprintf("%s keeps the primary role but fires no schedules and dispatches no runs until resumed. The suspension is stored: a new primary after a failover stays suspended too.", n.ID))
	case cluster.ModeSuspended:
		op("resume", "Resume", fmt.Sprintf("Resume the primary role on %s?", n.ID),
			fmt.Sprintf("%s fires and dispatches again; what fell due while suspended follows each job's misfire policy.", n.ID))
	case cluster.ModeStandby:
		op("standby", "Stand By", fmt.Sprintf("Hold standby %s?", n.ID),
			fmt.Sprintf("%s will not take over the primary role, also after it restarts, until released. It still runs work.", n.ID))
		if st.Primary != "" {
			out = append(out, action{Name: "switch", Label: "Switch", Title: fmt.Sprintf("Switch the primary role from %s to %s?", st.Primary, n.ID),
				Text: fmt.Sprintf("%s stops firing and dispatching and hands the primary role to %s, which takes over at once (a new lease epoch).", st.Primary, n.ID),
				Path: "/switch", Fields: url.Values{"to": {n.ID}}.Encode(), Confirm: "Switch"})
		}
	case cluster.ModeHeld:
		op("release", "Release", fmt.Sprintf("Release standby %s?", n.ID),
			fmt.Sprintf("%s may take over the primary role again when it is the best standby.", n.ID))
	}
	if canAdmin && n.Mode != cluster.ModeLost && n.Mode != cluster.ModeStopped && n.Mode != cluster.ModeDraining {
		primary := ""
		if n.Mode == cluster.ModePrimary || n.Mode == cluster.ModeSuspended {
			primary = " As the primary, it first hands its role to the best standby."
		}
		out = append(out, action{Name: "restart", Label: "Restart", Title: fmt.Sprintf("Restart node %s?", n.ID), Path: "/nodes/" + url.PathEscape(n.ID) + "/restart",
			Text:    fmt.Sprintf("%s drains (takes no new runs, lets its running runs finish within its shutdown grace) and starts again in place.%s", n.ID, primary),
			Confirm: "Restart", Danger: true})
		out = append(out, action{Name: "stop", Label: "Stop", Title: fmt.Sprintf("Stop node %s?", n.ID), Path: "/nodes/" + url.PathEscape(n.ID) + "/stop",
			Text:    fmt.Sprintf("%s drains (takes no new runs, lets its running runs finish within its shutdown grace) and exits; it stays down until started again on its host.%s", n.ID, primary),
			Confirm: "Stop", Danger: true})
	}
	return out
}

// nodeActionPath is the API's name of a console action.
func nodeActionPath(name string) string {
	if name == "release" {
		return "resume"
	}
	return name
}

func (c *Console) statusData(r *http.Request, s snapshot) statusData {
	d := statusData{pageData: c.basePage(r, "Server Status"), Primary: s.st.Primary, Epoch: s.st.Epoch, Suspended: s.st.Suspended, Now: c.p.Now()}
	d.Stream = "/stream/status"
	if s.err != nil {
		d.Error = "cannot read the status: " + s.err.Error()
	}
	for _, n := range s.st.Nodes {
		row := nodeRow{NodeStatus: n, Age: age(d.Now, n.HeartbeatAt), Actions: nodeActions(s.st, n, d.CanOperate, d.CanAdmin)}
		if n.Mode != cluster.ModeLost && n.Mode != cluster.ModeStopped {
			row.Uptime = age(d.Now, n.StartedAt)
		}
		row.Stale = d.Now.Sub(n.HeartbeatAt) > 5*time.Second && n.Mode != cluster.ModeStopped
		d.Nodes = append(d.Nodes, row)
	}
	return d
}

// statusPage is the landing page: the seed's Server Status window.
func (c *Console) statusPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "status", c.statusData(r, c.hub.current(r.Context())))
}

// statusStream pushes the summary and the node rows at each reading of the shared
// poller.
func (c *Console) statusStream(w http.ResponseWriter, r *http.Request) {
	ch, cancel := c.hub.subscribe()
	defer cancel()
	c.serveStream(w, r, func(yield func(name, html string) error) error {
		select {
		case s := <-ch:
			d := c.statusData(r, s)
			for _, p := range []string{"summary", "nodes"} {
				html, err := c.fragment("status", p, d)
				if err != nil {
					return err
				}
				if err := yield(p, html); err != nil {
					return err
				}
			}
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	})
}

// reauthEvery is how often a live stream checks that its session still holds.
const reauthEvery = time.Minute

// serveStream serves a Server-Sent Events stream: next waits for the next update and
// sends its panels through yield (an event per panel, named after it). The stream ends
// when the browser goes, the console closes, or the session ends.
func (c *Console) serveStream(w http.ResponseWriter, r *http.Request, next func(yield func(name, html string) error) error) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	checked := time.Now()
	sent := map[string]string{} // each panel as last sent: an unchanged one is not sent again
	yield := func(name, html string) error {
		if sent[name] == html {
			return nil
		}
		sent[name] = html
		var b strings.Builder
		b.WriteString("event: " + name + "\n")
		for line := range strings.SplitSeq(html, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		return rc.Flush()
	}
	for {
		if err := next(yield); err != nil {
			return
		}
		if time.Since(checked) > reauthEvery {
			if _, err := c.authenticate(r); err != nil {
				return
			}
			checked = time.Now()
		}
	}
}

type confirmData struct {
	pageData
	Action action
	Fields url.Values
}

// confirmPage asks for a confirmation without JavaScript: the same question as the
// dialog, for the action a button names (found again here among the actions offered
// now, never taken from the URL).
func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := confirmData{pageData: c.basePage(r, "Confirm")}
	var offered []action
	switch path := q.Get("path"); {
	case strings.HasPrefix(path, "/jobs/"):
		name, _, _ := strings.Cut(strings.TrimPrefix(path, "/jobs/"), "/")
		if name, err := url.PathUnescape(name); err == nil {
			var j api.Job
			if err := c.call(r, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(name), nil, &j); err == nil {
				offered = jobActions(j, d.CanOperate, d.CanAdmin)
			}
		}
	case strings.HasPrefix(path, "/runs/"):
		id, _, _ := strings.Cut(strings.TrimPrefix(path, "/runs/"), "/")
		rr := r.Clone(r.Context())
		rr.SetPathValue("id", id)
		if rd, err := c.runData(rr); err == nil {
			offered = rd.Actions
		}
	case strings.HasPrefix(path, "/sync/"):
		var st wire.SyncStatus
		if err := c.call(r, http.MethodGet, "/api/v1/sync/status", nil, &st); err == nil {
			offered = syncActions(st, d.CanOperate, d.CanAdmin)
		}
	default:
		s := c.hub.current(r.Context())
		for _, n := range s.st.Nodes {
			offered = append(offered, nodeActions(s.st, n, d.CanOperate, d.CanAdmin)...)
		}
	}
	for _, a := range offered {
		if a.Path == q.Get("path") && a.Fields == q.Get("fields") && a.Name == q.Get("name") {
			d.Action = a
			d.Fields, _ = url.ParseQuery(a.Fields)
			c.render(w, http.StatusOK, "confirm", d)
			return
		}
	}
	c.fail(w, r, http.StatusNotFound, "that action is not offered now (the state changed, or your role does not allow it)")
}

// nodeAction performs an operator action through the API (which forwards it to the node).
func (c *Console) nodeAction(act string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var res api.NodeActionResult
		err := c.call(r, http.MethodPost, "/api/v1/nodes/"+url.PathEscape(id)+"/"+act, nil, &res)
		c.p.Log.Info("console: node action", "node", id, "action", act, "by", sessionOf(r).p.Name, "err", err)
		back(w, r, "/", fmt.Sprintf("%s: %s done (now %s)", id, act, res.Mode), err)
	}
}

// switchAction hands the primary role to the node named (through the API, which
// forwards it to the primary).
func (c *Console) switchAction(w http.ResponseWriter, r *http.Request) {
	to := r.PostFormValue("to")
	var res api.SwitchResult
	err := c.call(r, http.MethodPost, "/api/v1/switch", jsonBody(api.SwitchRequest{To: to}), &res)
	c.p.Log.Info("console: switch", "to", to, "by", sessionOf(r).p.Name, "err", err)
	back(w, r, "/", fmt.Sprintf("switched: %s hands the primary role to %s", res.From, res.To), err)
}
