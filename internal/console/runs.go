package console

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
)

func (c *Console) registerRuns(mux *http.ServeMux) {
	c.route(mux, "GET /runs", auth.Viewer, c.runsPage)
	c.route(mux, "GET /stream/runs", auth.Viewer, c.runsStream)
	c.route(mux, "GET /runs/{id}", auth.Viewer, c.runPage)
	c.route(mux, "GET /stream/run/{id}", auth.Viewer, c.runStream)
	c.route(mux, "GET /runs/{id}/outputs/{name...}", auth.Viewer, c.outputDownload)
	c.route(mux, "POST /runs/{id}/cancel", auth.Operator, c.runCancel)
	c.route(mux, "GET /bulk", auth.Operator, c.bulkPage)
	c.route(mux, "POST /bulk", auth.Operator, c.bulkSubmit)
}

// Runs lists show at most RunsShown runs; their counts look at the newest RunsScanned
// runs matching the filter (the repository is asked for no more) and read "1000+"
// beyond.
const (
	RunsShown   = 100
	RunsScanned = 1000
)

// cancelable are the states a cancel applies to; retryable those a bulk "run again"
// applies to.
var (
	cancelable = []string{"queued", "assigned", "running"}
	retryable  = []string{"failed", "canceled"}
)

// runFilter is what a runs list is filtered by.
type runFilter struct {
	Job, Node    string
	States       []string
	Since, Until string // datetime-local values, read as UTC
}

func readRunFilter(q url.Values) runFilter {
	f := runFilter{Job: q.Get("job"), Node: q.Get("node"), Since: q.Get("since"), Until: q.Get("until")}
	for _, s := range q["state"] {
		for one := range strings.SplitSeq(s, ",") {
			if one != "" && !slices.Contains(f.States, one) {
				f.States = append(f.States, one)
			}
		}
	}
	return f
}

func (f runFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"job": f.Job, "node": f.Node, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(f.States) > 0 {
		q.Set("state", strings.Join(f.States, ","))
	}
	return q
}

func (f runFilter) Encode() string { return f.query().Encode() }

func parseLocal(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// apiQuery is the filter as GET /api/v1/runs takes it (times in RFC 3339 UTC).
func (f runFilter) apiQuery(limit int) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range map[string]string{"job": f.Job, "node": f.Node} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(f.States) > 0 {
		q.Set("state", strings.Join(f.States, ","))
	}
	for k, v := range map[string]string{"since": f.Since, "until": f.Until} {
		if v == "" {
			continue
		}
		if t, ok := parseLocal(v); ok {
			v = t.UTC().Format(time.RFC3339)
		}
		q.Set(k, v) // an unreadable one is the API's to refuse, naming it
	}
	return q
}

// list reads the newest runs matching f, at most scan of them (one API request: the
// repository filters), and whether there may be more.
func (c *Console) list(r *http.Request, f runFilter, scan int) ([]api.Run, bool, error) {
	var runs []api.Run
	ask := min(scan+1, api.RunListLimitMax) // one more tells whether there are more
	if err := c.call(r, http.MethodGet, "/api/v1/runs?"+f.apiQuery(ask).Encode(), nil, &runs); err != nil {
		return nil, false, err
	}
	if len(runs) > scan {
		return runs[:scan], true, nil
	}
	return runs, len(runs) == ask, nil
}

// count says how many: exact, or "N+" when the scan was cut short.
func count(n int, more bool) string {
	if more {
		return strconv.Itoa(n) + "+"
	}
	return strconv.Itoa(n)
}

type runsData struct {
	pageData
	Filter runFilter
	States []string
	Runs   []api.Run
	Count  string
	Bulk   []action
}

var runStates = []string{"queued", "assigned", "running", "succeeded", "failed", "canceled", "skipped", "missed"}

func (c *Console) runsData(r *http.Request) (runsData, error) {
	f := readRunFilter(r.URL.Query())
	d := runsData{pageData: c.basePage(r, "Runs"), Filter: f, States: runStates}
	d.Stream = "/stream/runs?" + f.Encode()
	runs, more, err := c.list(r, f, RunsScanned)
	if err != nil {
		return d, err
	}
	d.Count = count(len(runs), more)
	d.Runs = runs[:min(len(runs), RunsShown)]
	if d.CanOperate {
		nc, nr := 0, 0
		for _, run := range runs {
			switch {
			case slices.Contains(cancelable, run.State):
				nc++
			case slices.Contains(retryable, run.State):
				nr++
			}
		}
		if nc > 0 {
			d.Bulk = append(d.Bulk, bulkAction("cancel", f, count(nc, more)))
		}
		if nr > 0 {
			d.Bulk = append(d.Bulk, bulkAction("retry", f, count(nr, more)))
		}
	}
	return d, nil
}

// bulkAction is the button of a bulk action (cancel, retry) on the runs a filter
// selects, saying how many it selects now; the selection is made again on the server
// when confirmed.
func bulkAction(op string, f runFilter, n string) action {
	a := action{Name: "bulk-" + op, Path: "/bulk", Fields: "op=" + op + "&" + f.Encode(), Href: "/bulk?op=" + op + "&" + f.Encode(), Danger: true}
	switch op {
	case "cancel":
		a.Label, a.Title, a.Confirm = "Cancel "+n+" runs…", "Cancel "+n+" runs?", "Cancel "+n+" runs"
		a.Text = fmt.Sprintf("Every queued, assigned or running run matching this filter (%s now) is canceled: waiting ones at once, running ones are stopped. Canceled runs are not retried.", n)
	default:
		a.Label, a.Title, a.Confirm = "Run "+n+" again…", "Run "+n+" failed or canceled runs again?", "Run "+n+" again"
		a.Text = fmt.Sprintf("Every failed or canceled run matching this filter (%s now) gets one new on-demand run of its job, queued now (each job's overlap policy applies); the runs themselves stay as they ended. A run is run again once: confirming twice queues no more.", n)
	}
	return a
}

// runsPage lists runs, newest first, filtered; the table is kept live (new runs appear).
func (c *Console) runsPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.runsData(r)
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	c.render(w, http.StatusOK, "runs", d)
}

// liveEvery is how often a page's own live panel (runs, a run, events) is read again:
// one API request, one repository query, per open page.
const liveEvery = time.Second

// runsStream pushes the runs table again each second.
func (c *Console) runsStream(w http.ResponseWriter, r *http.Request) {
	c.serveStream(w, r, c.every(r, liveEvery, func(yield func(name, html string) error) error {
		d, err := c.runsData(r)
		if err != nil {
			return nil // shown again at the next tick; the page keeps what it has
		}
		for _, p := range []string{"runs-count", "runs-rows"} {
			html, err := c.fragment("runs", p, d)
			if err != nil {
				return err
			}
			if err := yield(p, html); err != nil {
				return err
			}
		}
		return nil
	}))
}

// every makes a stream's next from a tick: it waits an interval (none the first time),
// then sends.
func (c *Console) every(r *http.Request, d time.Duration, send func(yield func(name, html string) error) error) func(yield func(name, html string) error) error {
	first := true
	return func(yield func(name, html string) error) error {
		if !first {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return r.Context().Err()
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
		first = false
		return send(yield)
	}
}

type runData struct {
	pageData
	Run     api.Run
	Final   bool
	Live    bool // stdout and stderr are what the running command wrote so far
	Actions []action
}

// live reads what a running run's command wrote so far, from the node that runs it.
func (c *Console) live(r *http.Request, id int64) (api.LiveOutput, error) {
	var lv api.LiveOutput
	err := c.call(r, http.MethodGet, fmt.Sprintf("/api/v1/runs/%d/live", id), nil, &lv)
	return lv, err
}

func final(state string) bool { return !slices.Contains(cancelable, state) }

func (c *Console) runData(r *http.Request) (runData, error) {
	d := runData{pageData: c.basePage(r, "Run "+r.PathValue("id"))}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return d, &apiError{Code: http.StatusBadRequest, Body: api.Error{Error: fmt.Sprintf("run id must be a positive whole number, got %q", r.PathValue("id"))}}
	}
	if err := c.call(r, http.MethodGet, "/api/v1/runs/"+strconv.FormatInt(id, 10), nil, &d.Run); err != nil {
		return d, err
	}
	d.Final = final(d.Run.State)
	if d.Run.State == "running" {
		if lv, err := c.live(r, id); err == nil && lv.Live {
			d.Run.Stdout, d.Run.Stderr = &lv.Stdout, &lv.Stderr
			d.Live = true
		}
	}
	if !d.Final {
		d.Stream = "/stream/run/" + strconv.FormatInt(id, 10)
		if d.CanOperate {
			d.Actions = []action{{Name: "cancel", Label: "Cancel", Title: fmt.Sprintf("Cancel run %d of %s?", id, d.Run.Job), Path: fmt.Sprintf("/runs/%d/cancel", id),
				Text: "A waiting run is canceled at once; a running one is stopped (its process group gets SIGTERM, then SIGKILL). It is not retried.", Confirm: "Cancel the run", Danger: true}}
		}
	}
	return d, nil
}

// runPage shows a run: state, attempts, node, timings, stdout and stderr, outputs with
// their holders, deliveries with their attempts. While it has not ended it is kept live.
func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.runData(r)
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	c.render(w, http.StatusOK, "run", d)
}

// runLiveEvery is how often a run page that has not ended reads the run again: its
// state and, while it runs, what its command wrote so far (one request to the node
// that runs it: a query or two). The whole record (outputs, deliveries: a few queries)
// is read again only when the state changes.
const runLiveEvery = 2 * time.Second

// runStream pushes, while the run has not ended, its stdout and stderr as they grow,
// and the whole panel when its state changes.
func (c *Console) runStream(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "run id must be a positive whole number")
		return
	}
	state, ended := "", false
	var lastOut, lastErr string
	c.serveStream(w, r, c.every(r, runLiveEvery, func(yield func(name, html string) error) error {
		if ended {
			<-r.Context().Done() // nothing changes any more; the page keeps the last panel
			return r.Context().Err()
		}
		lv, err := c.live(r, id)
		if err != nil {
			return nil // tried again at the next tick
		}
		if lv.State != state {
			d, err := c.runData(r)
			if err != nil {
				return nil
			}
			state, ended = d.Run.State, d.Final
			lastOut, lastErr = deref(d.Run.Stdout), deref(d.Run.Stderr)
			html, err := c.fragment("run", "run-panel", d)
			if err != nil {
				return err
			}
			return yield("run", html)
		}
		if !lv.Live {
			return nil
		}
		for _, p := range []struct {
			name, text string
			last       *string
		}{{"stdout", lv.Stdout, &lastOut}, {"stderr", lv.Stderr, &lastErr}} {
			if p.text == *p.last {
				continue
			}
			*p.last = p.text
			if err := yield(p.name, template.HTMLEscapeString(p.text)); err != nil {
				return err
			}
		}
		return nil
	}))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (c *Console) outputDownload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", pathBase(r.PathValue("name"))))
	c.proxy(w, r, "/api/v1/runs/"+url.PathEscape(r.PathValue("id"))+"/outputs/"+escapePath(r.PathValue("name")))
}

func pathBase(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

func (c *Console) runCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := c.call(r, http.MethodPost, "/api/v1/runs/"+url.PathEscape(id)+"/cancel", nil, nil)
	back(w, r, "/runs/"+url.PathEscape(id), "run "+id+": cancel requested", err)
}

// BulkMax is the most runs one bulk action changes.
const BulkMax = 10000

// bulkSelection is the runs matching a filter that a bulk action applies to (cancel:
// the cancelable ones; retry: the failed and canceled ones), found again on the server.
func (c *Console) bulkSelection(r *http.Request, op string, f runFilter) ([]api.Run, bool, error) {
	applies := cancelable
	if op == "retry" {
		applies = retryable
	}
	var states []string
	for _, s := range cmpOrSlice(f.States, applies) {
		if slices.Contains(applies, s) {
			states = append(states, s)
		}
	}
	if len(states) == 0 {
		return nil, false, nil
	}
	f.States = states
	return c.list(r, f, BulkMax)
}

func cmpOrSlice(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// bulkOp reads a bulk action's op (cancel, retry).
func bulkOp(v string) (string, error) {
	if v != "cancel" && v != "retry" {
		return "", &apiError{Code: http.StatusBadRequest, Body: api.Error{Error: fmt.Sprintf("no such bulk action %q (cancel, retry)", v), Field: "op"}}
	}
	return v, nil
}

// bulkPage asks for the confirmation of a bulk action without JavaScript, with the count.
func (c *Console) bulkPage(w http.ResponseWriter, r *http.Request) {
	op, err := bulkOp(r.URL.Query().Get("op"))
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	f := readRunFilter(r.URL.Query())
	runs, more, err := c.bulkSelection(r, op, f)
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	d := confirmData{pageData: c.basePage(r, "Bulk "+op), Action: bulkAction(op, f, count(len(runs), more))}
	d.Fields, _ = url.ParseQuery(d.Action.Fields)
	c.render(w, http.StatusOK, "confirm", d)
}

// bulkSubmit cancels, or runs again, every run of the filter the action applies to: the
// selection is made here, on the server, when confirmed.
func (c *Console) bulkSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	op, err := bulkOp(r.PostForm.Get("op"))
	if err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	f := readRunFilter(r.PostForm)
	runs, _, err := c.bulkSelection(r, op, f)
	if err != nil {
		back(w, r, "/runs", "", err)
		return
	}
	done, failed := 0, 0
	var last error
	for _, run := range runs {
		var err error
		if op == "cancel" {
			err = c.call(r, http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), nil, nil)
		} else {
			// The key makes a run's retry happen once, however often this is confirmed.
			err = c.callHeader(r, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(run.Job)+"/run",
				http.Header{api.IdempotencyKeyHeader: {fmt.Sprintf("console-run-again-%d", run.ID)}}, nil, nil)
		}
		if err != nil {
			failed++
			last = err
			continue
		}
		done++
	}
	c.p.Log.Info("console: bulk "+op, "filter", f.Encode(), "done", done, "failed", failed, "by", sessionOf(r).p.Name)
	msg := fmt.Sprintf("%d runs canceled", done)
	if op == "retry" {
		msg = fmt.Sprintf("%d runs run again", done)
	}
	if failed > 0 {
		msg += fmt.Sprintf("; %d could not be (%s)", failed, errText(last))
	}
	http.Redirect(w, r, "/runs?"+f.Encode()+"&msg="+url.QueryEscape(msg), http.StatusSeeOther)
}
