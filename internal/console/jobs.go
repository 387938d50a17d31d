package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
)

func (c *Console) registerJobs(mux *http.ServeMux) {
	c.route(mux, "GET /jobs", auth.Viewer, c.jobsPage)
	c.route(mux, "GET /jobs/{name}", auth.Viewer, c.jobPage)
	c.route(mux, "GET /apply", auth.Admin, c.applyPage)
	c.route(mux, "POST /apply", auth.Admin, c.applySubmit)
	c.route(mux, "POST /jobs/{name}/run", auth.Operator, c.jobVerb("run"))
	c.route(mux, "POST /jobs/{name}/pause", auth.Operator, c.jobVerb("pause"))
	c.route(mux, "POST /jobs/{name}/resume", auth.Operator, c.jobVerb("resume"))
	c.route(mux, "POST /jobs/{name}/delete", auth.Admin, c.jobVerb("delete"))
}

// JobRunsStrip is how many of a job's latest runs the jobs list shows; JobsShown is how
// many jobs it shows at most (each costs a query for its strip: filter to narrow).
const (
	JobRunsStrip = 10
	JobsShown    = 200
)

type jobRow struct {
	api.Job
	Runs      []api.Run // newest first, at most JobRunsStrip
	LastState string
}

type jobsData struct {
	pageData
	Q, Tag, Paused, State string
	Jobs                  []jobRow
	Total                 int
	More                  bool // more jobs match than are shown
}

// jobsPage lists the jobs, filtered by name, tag, paused and the last run's state,
// each with its next fire time and its latest runs.
func (c *Console) jobsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := jobsData{pageData: c.basePage(r, "Jobs"), Q: q.Get("q"), Tag: q.Get("tag"), Paused: q.Get("paused"), State: q.Get("state")}
	var jobs []api.Job
	if err := c.call(r, http.MethodGet, "/api/v1/jobs", nil, &jobs); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	d.Total = len(jobs)
	for _, j := range jobs {
		if len(d.Jobs) == JobsShown {
			d.More = true
			break
		}
		switch {
		case d.Q != "" && !strings.Contains(strings.ToLower(j.Name), strings.ToLower(d.Q)):
			continue
		case d.Tag != "" && !slices.Contains(j.Tags, d.Tag):
			continue
		case d.Paused == "yes" && !j.Paused, d.Paused == "no" && j.Paused:
			continue
		}
		row := jobRow{Job: j}
		if err := c.call(r, http.MethodGet, "/api/v1/runs?"+url.Values{"job": {j.Name}, "limit": {fmt.Sprint(JobRunsStrip)}}.Encode(), nil, &row.Runs); err != nil {
			c.fail(w, r, statusOf(err), errText(err))
			return
		}
		if len(row.Runs) > 0 {
			row.LastState = row.Runs[0].State
		}
		if d.State != "" && row.LastState != d.State {
			continue
		}
		d.Jobs = append(d.Jobs, row)
	}
	c.render(w, http.StatusOK, "jobs", d)
}

// JobUpcoming is how many occurrences the job page lists per schedule.
const JobUpcoming = 10

type scheduleView struct {
	Expr, Kind string
	Next       []occurrence
	Ended      bool
}

type occurrence struct {
	UTC, Local string
	Skipped    bool
}

type jobData struct {
	pageData
	Job         api.Job
	Definition  string
	Schedules   []scheduleView
	ScheduleErr string
	Runs        []api.Run
	Actions     []action
}

// jobPage shows a job: its definition as the API shows it (secrets masked), each
// schedule's next occurrences, its latest runs and the actions the role allows.
func (c *Console) jobPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d := jobData{pageData: c.basePage(r, "Job "+name)}
	if err := c.call(r, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(name), nil, &d.Job); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	def, _ := json.MarshalIndent(d.Job.Spec, "", "  ")
	d.Definition = string(def)
	if scheds, err := d.Job.Spec.Schedules(); err != nil {
		d.ScheduleErr = err.Error()
	} else {
		now := c.p.Now()
		for i, s := range scheds {
			v := scheduleView{Expr: d.Job.Schedule[i], Kind: fmt.Sprint(s.Expr.Kind())}
			for after := now; len(v.Next) < JobUpcoming; {
				t, ok := s.Next(after)
				if !ok {
					v.Ended = true
					break
				}
				loc := s.Location
				if loc == nil {
					loc = time.UTC
				}
				v.Next = append(v.Next, occurrence{UTC: when(t), Local: t.In(loc).Format("2006-01-02 15:04:05 MST"), Skipped: s.BlackedOut(t)})
				after = t
			}
			d.Schedules = append(d.Schedules, v)
		}
	}
	if err := c.call(r, http.MethodGet, "/api/v1/runs?"+url.Values{"job": {name}, "limit": {"20"}}.Encode(), nil, &d.Runs); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	d.Actions = jobActions(d.Job, d.CanOperate, d.CanAdmin)
	c.render(w, http.StatusOK, "job", d)
}

// jobActions are the actions on a job the role allows.
func jobActions(j api.Job, canOperate, canAdmin bool) []action {
	if !canOperate {
		return nil
	}
	p := "/jobs/" + url.PathEscape(j.Name) + "/"
	out := []action{{Name: "run", Label: "Run now", Title: fmt.Sprintf("Run %s now?", j.Name), Path: p + "run", Confirm: "Run now",
		Text: fmt.Sprintf("An on-demand run of %s is queued now and given to a node (its overlap policy, %s, applies).", j.Name, cmpOr(j.Overlap, "allow"))}}
	if j.Paused {
		out = append(out, action{Name: "resume", Label: "Resume", Title: fmt.Sprintf("Resume %s?", j.Name), Path: p + "resume", Confirm: "Resume",
			Text: "Its schedules fire again from now on; the paused time is neither fired nor missed."})
	} else {
		out = append(out, action{Name: "pause", Label: "Pause", Title: fmt.Sprintf("Pause %s?", j.Name), Path: p + "pause", Confirm: "Pause",
			Text: "Its schedules stop firing until resumed (on-demand runs still start)."})
	}
	if canAdmin {
		out = append(out, action{Name: "delete", Label: "Delete", Title: fmt.Sprintf("Delete job %s?", j.Name), Path: p + "delete", Confirm: "Delete", Danger: true,
			Text: "The job and its schedules are deleted; its queued runs are canceled; its runs stay as history."})
	}
	return out
}

// jobVerb performs run, pause, resume or delete on a job through the API.
func (c *Console) jobVerb(verb string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		path, method := "/api/v1/jobs/"+url.PathEscape(name), http.MethodDelete
		if verb != "delete" {
			path, method = path+"/"+verb, http.MethodPost
		}
		var run api.Run
		err := c.call(r, method, path, nil, &run)
		msg := fmt.Sprintf("job %s: %s done", name, verb)
		switch {
		case err == nil && verb == "run":
			http.Redirect(w, r, fmt.Sprintf("/runs/%d?msg=%s", run.ID, url.QueryEscape(fmt.Sprintf("run %d of %s queued", run.ID, name))), http.StatusSeeOther)
			return
		case err == nil && verb == "delete":
			http.Redirect(w, r, "/jobs?msg="+url.QueryEscape("job "+name+" deleted"), http.StatusSeeOther)
			return
		}
		back(w, r, "/jobs/"+url.PathEscape(name), msg, err)
	}
}

type applyData struct {
	pageData
	File, Format string
	Error, Field string
	Line         int // the line of File the field is on (0: not found)
	Applied      []api.ApplyResult
}

func (c *Console) applyPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "apply", applyData{pageData: c.basePage(r, "Apply a job file"), Format: "toml"})
}

// applySubmit applies a job file through the API; a validation error is shown next to
// the file, naming the field (and the line it is on).
func (c *Console) applySubmit(w http.ResponseWriter, r *http.Request) {
	d := applyData{pageData: c.basePage(r, "Apply a job file"), File: r.PostFormValue("file"), Format: r.PostFormValue("format")}
	ct := "application/toml"
	if d.Format == "json" {
		ct = "application/json"
	}
	if err := c.callType(r, http.MethodPost, "/api/v1/jobs", ct, []byte(d.File), &d.Applied); err != nil {
		d.Error, d.Field = errText(err), errField(err, "file")
		d.Line = fieldLine(d.File, d.Field)
		c.render(w, statusOf(err), "apply", d)
		return
	}
	c.render(w, http.StatusOK, "apply", d)
}

var fieldIndex = regexp.MustCompile(`\[\d+\]`)

// fieldLine finds the line of a job file where a field (as the API names it:
// "timeout", "deliver[1].secret", "command.argv") is set: the first line setting its
// last key, after the line of its table when it has one. 0 when not found.
func fieldLine(file, field string) int {
	parts := strings.Split(fieldIndex.ReplaceAllString(field, ""), ".")
	key := parts[len(parts)-1]
	if key == "" {
		return 0
	}
	set := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*[=:]`)
	table := ""
	if len(parts) > 1 {
		table = parts[len(parts)-2]
	}
	inTable := table == ""
	for i, line := range strings.Split(file, "\n") {
		t := strings.TrimSpace(line)
		if table != "" && (t == "["+table+"]" || t == "[["+table+"]]" || strings.Contains(t, `"`+table+`"`)) {
			inTable = true
		}
		if inTable && set.MatchString(line) {
			return i + 1
		}
	}
	return 0
}
