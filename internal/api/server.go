package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
)

// MaxBodyBytes bounds a request body (a job file).
const MaxBodyBytes = 1 << 20

// Backend is what the handlers need from the node serving them, beyond the repository.
type Backend interface {
	// Status builds the server-status table.
	Status(ctx context.Context) (Status, error)
	// JobsChanged tells the node's scheduler that jobs changed.
	JobsChanged()
	// RunsQueued tells the node's dispatcher that runs were queued.
	RunsQueued()
	// CancelLocal stops the run's attempt if it runs on this node.
	CancelLocal(runID int64, why string)
	// NodeID is this node's name.
	NodeID() string
	// NodeAddress returns the advertised address of a node ("" if unknown).
	NodeAddress(ctx context.Context, id string) string
	// Outputs is this node's output store: copies, fetch on demand.
	Outputs() *output.Service
	// OutputsHint tells this node's copier that outputs may need copies.
	OutputsHint()
	// NodeAction performs an operator action (suspend, resume, standby, stop, restart)
	// on this node for `by` (who asked) and returns its new mode; store.ErrConflict where
	// it makes no sense.
	NodeAction(ctx context.Context, action, by string) (string, error)
	// NodeWeight sets and stores this node's load-balancing weight, for `by`.
	NodeWeight(ctx context.Context, weight float64, by string) error
	// Switch hands the primary role over to `to` (the best standby when empty); only on
	// the primary. It returns the successor.
	Switch(ctx context.Context, to string) (string, error)
	// LeaseHint asks this node to look at the lease now.
	LeaseHint()
	// WorkHint asks this node's worker to look for runs assigned to it now.
	WorkHint()
}

// Server serves the REST API.
type Server struct {
	store  store.Store
	b      Backend
	log    *slog.Logger
	now    func() time.Time
	peer   *peer.Client
	auth   *auth.Authenticator // nil: nothing but public endpoints is served
	routes []Route
}

// NewServer returns the API handlers. Requests are judged by the backend's
// Authenticator() if it has one; without one, every endpoint but the public ones is
// refused. Instants it records (a job's first next-fire, an
// on-demand run's creation) come from the backend's Now() if it has one (a node's clock
// corrected to the repository's), else from time.Now; calls to other nodes go through
// the backend's Peer() if it has one, else a peer client of the server's own.
func NewServer(st store.Store, b Backend, log *slog.Logger) *Server {
	s := &Server{store: st, b: b, log: log, now: time.Now}
	if c, ok := b.(interface{ Now() time.Time }); ok {
		s.now = c.Now
	}
	if p, ok := b.(interface{ Peer() *peer.Client }); ok {
		s.peer = p.Peer()
	} else {
		s.peer = peer.New()
	}
	if a, ok := b.(interface{ Authenticator() *auth.Authenticator }); ok {
		s.auth = a.Authenticator()
	}
	return s
}

// metricsBackend is a backend that has Prometheus metrics to serve.
type metricsBackend interface{ MetricsHandler() http.Handler }

// metrics serves the node's Prometheus metrics (viewer role).
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	m, ok := s.b.(metricsBackend)
	if !ok {
		http.NotFound(w, r)
		return
	}
	m.MetricsHandler().ServeHTTP(w, r)
}

// Register adds the API routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	s.routes = nil
	s.route(mux, "GET /healthz", auth.Public, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route(mux, "GET /api/v1/status", auth.Viewer, s.handle(s.status))
	s.route(mux, "GET /metrics", auth.Viewer, s.metrics)
	s.route(mux, "GET /api/v1/jobs", auth.Viewer, s.handle(s.jobList))
	s.route(mux, "POST /api/v1/jobs", auth.Admin, s.handle(s.jobApply))
	s.route(mux, "GET /api/v1/jobs/{name}", auth.Viewer, s.handle(s.jobGet))
	s.route(mux, "DELETE /api/v1/jobs/{name}", auth.Admin, s.handle(s.jobDelete))
	s.route(mux, "POST /api/v1/jobs/{name}/pause", auth.Operator, s.handle(s.jobPause(true)))
	s.route(mux, "POST /api/v1/jobs/{name}/resume", auth.Operator, s.handle(s.jobPause(false)))
	s.route(mux, "POST /api/v1/jobs/{name}/run", auth.Operator, s.handle(s.jobRun))
	s.route(mux, "GET /api/v1/runs", auth.Viewer, s.handle(s.runList))
	s.route(mux, "GET /api/v1/runs/{id}", auth.Viewer, s.handle(s.runGet))
	s.route(mux, "POST /api/v1/runs/{id}/cancel", auth.Operator, s.handle(s.runCancel))
	s.route(mux, "GET /api/v1/runs/{id}/live", auth.Viewer, s.runLive)
	s.route(mux, "GET /api/v1/runs/{id}/outputs", auth.Viewer, s.handle(s.outputList))
	s.route(mux, "GET /api/v1/runs/{id}/outputs/{name...}", auth.Viewer, s.outputGet)
	s.route(mux, "GET /api/v1/outputs", auth.Viewer, s.handle(s.outputFind))
	s.route(mux, "GET /api/v1/internal/outputs/{id}/{attempt}/{name...}", auth.Peer, s.outputCopy)
	s.route(mux, "POST /api/v1/internal/outputs-hint", auth.Peer, func(w http.ResponseWriter, r *http.Request) {
		s.b.OutputsHint()
		w.WriteHeader(http.StatusNoContent)
	})
	s.route(mux, "GET /api/v1/events", auth.Viewer, s.handle(s.eventList))
	s.registerDeliveries(mux)
	s.registerRules(mux)
	s.route(mux, "POST /api/v1/switch", auth.Operator, s.switchover)
	for _, a := range []string{"suspend", "resume", "standby"} {
		s.route(mux, "POST /api/v1/nodes/{id}/"+a, auth.Operator, s.nodeAction(a))
	}
	for _, a := range []string{"stop", "restart"} {
		s.route(mux, "POST /api/v1/nodes/{id}/"+a, auth.Admin, s.nodeAction(a))
	}
	s.route(mux, "POST /api/v1/nodes/{id}/weight", auth.Admin, s.nodeWeight)
	s.route(mux, "POST /api/v1/internal/lease-hint", auth.Peer, func(w http.ResponseWriter, r *http.Request) {
		s.b.LeaseHint()
		w.WriteHeader(http.StatusNoContent)
	})
	s.route(mux, "POST /api/v1/internal/work-hint", auth.Peer, func(w http.ResponseWriter, r *http.Request) {
		s.b.WorkHint()
		w.WriteHeader(http.StatusNoContent)
	})
	s.registerAuth(mux)
	s.registerSecrets(mux)
	s.registerSync(mux)
	mux.HandleFunc("/", s.unrouted(mux))
}

// routeMethods are the methods a route may be registered for.
var routeMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// unrouted answers what no route takes, in the API's error shape: 405 with Allow when
// the path has routes for other methods, else 404. It stands in for the mux's own plain
// text answers, which it would give only without this catch-all.
func (s *Server) unrouted(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range routeMethods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
				if m == "GET" {
					allow = append(allow, "HEAD")
				}
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, Error{Error: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")), Field: "method"})
			return
		}
		writeJSON(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no such endpoint: %s %s (see the REST API in the README)", r.Method, r.URL.Path), Field: "path"})
	}
}

// handler returns a value to encode as JSON with its status, or an error.
type handler func(r *http.Request) (int, any, error)

func (s *Server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code, v, err := h(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, code, v)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// badRequest is an error in the request itself.
type badRequest struct {
	field, msg string
}

func (e *badRequest) Error() string { return e.msg }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *job.ValidationError
	var br *badRequest
	var tooLarge *http.MaxBytesError
	var se *statusError
	body := Error{Error: err.Error()}
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &se):
		code, body.Field = se.code, se.field
		if se.retryAfter != "" {
			w.Header().Set("Retry-After", se.retryAfter)
		}
	case errors.As(err, &tooLarge):
		code, body.Field = http.StatusRequestEntityTooLarge, "body"
	case errors.As(err, &ve):
		code, body.Field = http.StatusBadRequest, ve.Field
	case errors.As(err, &br):
		code, body.Field = http.StatusBadRequest, br.field
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrSyncTarget):
		code, body.Field = http.StatusConflict, "sync"
	case errors.Is(err, store.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, store.ErrFenced), errors.Is(err, errUnreachable), errors.Is(err, output.ErrLost):
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, body)
}

func (s *Server) status(r *http.Request) (int, any, error) {
	st, err := s.b.Status(r.Context())
	return http.StatusOK, st, err
}

func (s *Server) jobList(r *http.Request) (int, any, error) {
	jobs, err := s.store.JobList(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, JobFrom(j))
	}
	return http.StatusOK, out, nil
}

// jobApply creates or updates the jobs of a job file (TOML or JSON), all or none.
func (s *Server) jobApply(r *http.Request) (int, any, error) {
	data, err := readBody(r, MaxBodyBytes)
	if err != nil {
		return 0, nil, fmt.Errorf("read job file: %w", err)
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		switch ct := r.Header.Get("Content-Type"); {
		case strings.Contains(ct, "json"):
			format = job.FormatJSON
		case strings.Contains(ct, "toml"):
			format = job.FormatTOML
		default:
			format = job.DetectFormat("", data)
		}
	}
	specs, err := job.Parse(data, format)
	if err != nil {
		return 0, nil, err
	}
	a := s.audit(r)
	p := store.JobApplyParams{Now: s.now(), Audit: &a}
	for _, sp := range specs {
		var stored []string
		switch j, err := s.store.JobGet(r.Context(), sp.Name); {
		case err == nil:
			stored = j.Spec.Schedule
		case !errors.Is(err, store.ErrNotFound):
			return 0, nil, err
		}
		if err := sp.CheckAtFuture(p.Now, stored); err != nil {
			return 0, nil, err
		}
		d := store.JobDef{Spec: sp}
		for i, e := range sp.Schedule {
			d.Schedules = append(d.Schedules, store.ScheduleSpec{Key: sp.ScheduleKey(i), Expr: e})
		}
		p.Jobs = append(p.Jobs, d)
	}
	res, err := s.store.JobApply(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	s.b.JobsChanged()
	out := make([]ApplyResult, 0, len(res))
	code := http.StatusOK
	for _, a := range res {
		out = append(out, ApplyResult{Name: a.Job.Name, Created: a.Created, Job: JobFrom(a.Job)})
		if a.Created {
			code = http.StatusCreated
		}
		s.log.Info("job applied", "job", a.Job.Name, "created", a.Created)
	}
	return code, out, nil
}

func (s *Server) jobGet(r *http.Request) (int, any, error) {
	j, err := s.store.JobGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, JobFrom(j), nil
}

func (s *Server) jobDelete(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	a := s.audit(r)
	if err := s.store.JobDelete(r.Context(), store.JobDeleteParams{Name: name, Audit: &a}); err != nil {
		return 0, nil, err
	}
	s.b.JobsChanged()
	s.log.Info("job deleted", "job", name)
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

func (s *Server) jobPause(paused bool) handler {
	return func(r *http.Request) (int, any, error) {
		a := s.audit(r)
		j, err := s.store.JobSetPaused(r.Context(), store.JobSetPausedParams{Name: r.PathValue("name"), Paused: paused, Now: s.now(), Audit: &a})
		if err != nil {
			return 0, nil, err
		}
		s.b.JobsChanged()
		s.log.Info("job paused state changed", "job", j.Name, "paused", paused)
		return http.StatusOK, JobFrom(j), nil
	}
}

// idempotencyKeyMax bounds an Idempotency-Key's length.
const idempotencyKeyMax = 200

func (s *Server) jobRun(r *http.Request) (int, any, error) {
	key := r.Header.Get(IdempotencyKeyHeader)
	if len(key) > idempotencyKeyMax || strings.ContainsFunc(key, func(c rune) bool { return c < ' ' || c > '~' }) {
		return 0, nil, &badRequest{"Idempotency-Key", fmt.Sprintf("the %s header must be at most %d printable ASCII characters", IdempotencyKeyHeader, idempotencyKeyMax)}
	}
	a := s.audit(r)
	run, err := s.store.RunCreate(r.Context(), store.RunCreateParams{Job: r.PathValue("name"), Trigger: store.TriggerManual, Now: s.now(),
		IdempotencyKey: key, Audit: &a})
	if err != nil {
		return 0, nil, err
	}
	s.b.RunsQueued()
	return http.StatusCreated, RunFrom(run), nil
}

func (s *Server) runList(r *http.Request) (int, any, error) {
	p, err := parseRunListQuery(r.URL.Query())
	if err != nil {
		return 0, nil, err
	}
	runs, err := s.store.RunList(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Run, 0, len(runs))
	for _, run := range runs {
		out = append(out, RunFrom(run))
	}
	return http.StatusOK, out, nil
}

// parseRunListQuery reads GET /api/v1/runs's job=, state= (repeated or comma
// separated), node=, since= and until= (RFC 3339: runs created then or after, then or
// before), limit= and before=.
func parseRunListQuery(q url.Values) (store.RunListParams, error) {
	p := store.RunListParams{Job: q.Get("job"), Node: q.Get("node")}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", &p.From}, {"until", &p.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return p, &badRequest{b.name, fmt.Sprintf("%s must be an RFC 3339 time such as 2026-12-01T07:00:00Z, got %q", b.name, v)}
			}
			*b.t = t
		}
	}
	for _, st := range q["state"] {
		for _, one := range strings.Split(st, ",") {
			if !store.RunState(one).Valid() {
				return p, &badRequest{"state", fmt.Sprintf("%q is not a run state (queued, assigned, running, succeeded, failed, canceled, skipped, missed)", one)}
			}
			p.States = append(p.States, store.RunState(one))
		}
	}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), "limit", 0, RunListLimitMax); err != nil {
		return p, err
	}
	before, err := intParam(q.Get("before"), "before", 0, 1<<62)
	if err != nil {
		return p, err
	}
	p.BeforeID = int64(before)
	return p, nil
}

// RunListLimitMax is the most runs one GET /api/v1/runs returns (wire.RunListLimitMax).
const RunListLimitMax = wire.RunListLimitMax

func intParam(v, name string, lo, hi int) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &badRequest{name, wire.LimitProblem(name, lo, hi, v)}
	}
	return n, nil
}

// readBody reads a request body of at most max bytes; a longer one is an
// *http.MaxBytesError, which is answered 413.
func readBody(r *http.Request, max int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, max))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("the body is over %d bytes: %w", max, err)
	}
	if err != nil {
		return nil, &badRequest{"body", fmt.Sprintf("read the body: %v", err)}
	}
	return data, nil
}

func runID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &badRequest{"id", fmt.Sprintf("run id must be a positive whole number, got %q", r.PathValue("id"))}
	}
	return id, nil
}

func (s *Server) runGet(r *http.Request) (int, any, error) {
	id, err := runID(r)
	if err != nil {
		return 0, nil, err
	}
	run, err := s.store.RunGet(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	v := RunFrom(run)
	stdout, stderr := string(run.Stdout), string(run.Stderr)
	v.Stdout, v.Stderr = &stdout, &stderr
	outs, err := s.store.OutputList(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	if v.Outputs, err = s.describe(r.Context(), outs); err != nil {
		return 0, nil, err
	}
	ds, err := s.store.DeliveryList(r.Context(), store.DeliveryListParams{RunID: id, Limit: 1000})
	if err != nil {
		return 0, nil, err
	}
	for _, d := range slices.Backward(ds) { // by entry: oldest record first
		v.Deliveries = append(v.Deliveries, DeliveryFrom(d))
	}
	return http.StatusOK, v, nil
}

func (s *Server) runCancel(r *http.Request) (int, any, error) {
	id, err := runID(r)
	if err != nil {
		return 0, nil, err
	}
	a := s.audit(r)
	run, err := s.store.RunCancel(r.Context(), store.RunCancelParams{ID: id, Now: s.now(), Reason: "canceled by request", Audit: &a})
	if err != nil {
		return 0, nil, err
	}
	s.b.CancelLocal(id, "canceled by request")
	s.log.Info("run cancel requested", "run", id, "state", run.State)
	return http.StatusOK, RunFrom(run), nil
}

func (s *Server) outputList(r *http.Request) (int, any, error) {
	id, err := runID(r)
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.store.RunGet(r.Context(), id); err != nil {
		return 0, nil, err
	}
	outs, err := s.store.OutputList(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.describe(r.Context(), outs)
	if list == nil {
		list = []Output{}
	}
	return http.StatusOK, list, err
}

// outputGet streams an output file from this node's copy; a node that holds none
// fetches it from a live holder first (and keeps it).
func (s *Server) outputGet(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	outs, err := s.store.OutputList(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, o := range outs {
		if o.Name != name {
			continue
		}
		svc := s.b.Outputs()
		if svc == nil {
			s.writeError(w, r, fmt.Errorf("output %s of run %d: this node keeps no outputs: %w", name, id, errUnreachable))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(peer.SHA256Header, o.SHA256)
		// A whole file this node must fetch first is streamed as it arrives (the
		// client's wait for a first byte does not grow with the file); a range is
		// served once the copy is here.
		var begin func() io.Writer
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
			begin = func() io.Writer {
				w.Header().Set("Content-Length", strconv.FormatInt(o.Size, 10))
				w.WriteHeader(http.StatusOK)
				return w
			}
		}
		f, err := svc.OpenOrStream(r.Context(), o, begin)
		switch {
		case errors.Is(err, output.ErrStreamed):
			s.log.Warn("output download failed part way", "run", id, "output", name, "err", err)
			panic(http.ErrAbortHandler) // the client sees a cut answer, not a whole one
		case err != nil:
			w.Header().Del(peer.SHA256Header)
			s.writeError(w, r, fmt.Errorf("output %s of run %d: %w", name, id, err))
			return
		case f == nil:
			return // streamed
		}
		defer f.Close()
		http.ServeContent(w, r, "", o.CreatedAt, f)
		return
	}
	s.writeError(w, r, fmt.Errorf("output %q of run %d: %w", name, id, store.ErrNotFound))
}

// outputCopy serves this node's own copy of an output to another node (never fetched).
func (s *Server) outputCopy(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attempt, err := strconv.Atoi(r.PathValue("attempt"))
	if err != nil || attempt < 1 || s.b.Outputs() == nil {
		s.writeError(w, r, &badRequest{"attempt", fmt.Sprintf("attempt must be a positive whole number, got %q", r.PathValue("attempt"))})
		return
	}
	s.b.Outputs().ServeCopy(w, r, store.OutputRef{RunID: id, Attempt: attempt, Name: r.PathValue("name")})
}

// outputFind lists outputs with their holders: GET /api/v1/outputs?run=&underreplicated=&limit=.
func (s *Server) outputFind(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", 0, store.OutputFindLimitDefault*10)
	if err != nil {
		return 0, nil, err
	}
	run, err := intParam(q.Get("run"), "run", 0, 1<<62)
	if err != nil {
		return 0, nil, err
	}
	under := false
	switch v := q.Get("underreplicated"); v {
	case "", "false", "0":
	case "true", "1":
		under = true
	default:
		return 0, nil, &badRequest{"underreplicated", fmt.Sprintf("underreplicated must be true or false, got %q", v)}
	}
	outs, err := s.store.OutputFind(r.Context(), store.OutputFindParams{RunID: int64(run), Limit: limit})
	if err != nil {
		return 0, nil, err
	}
	list, err := s.describe(r.Context(), outs)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Output, 0, len(list))
	for _, o := range list {
		if !under || !o.Durable {
			out = append(out, o)
		}
	}
	return http.StatusOK, out, nil
}

// describe converts outputs with their holders and whether each is durable.
func (s *Server) describe(ctx context.Context, outs []store.Output) ([]Output, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	var ds []output.Description
	if svc := s.b.Outputs(); svc != nil {
		var err error
		if ds, err = svc.Describe(ctx, outs); err != nil {
			return nil, err
		}
	}
	list := make([]Output, 0, len(outs))
	for i, o := range outs {
		v := OutputFrom(o)
		if ds != nil {
			v.Copies, v.Durable = ds[i].Target, ds[i].Durable
			for j := range v.Holders {
				v.Holders[j].State = ds[i].States[v.Holders[j].Node]
			}
		}
		list = append(list, v)
	}
	return list, nil
}

func (s *Server) eventList(r *http.Request) (int, any, error) {
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 0, 10000)
	if err != nil {
		return 0, nil, err
	}
	evs, err := s.store.EventList(r.Context(), store.EventListParams{Type: r.URL.Query().Get("type"), Limit: limit})
	if err != nil {
		return 0, nil, err
	}
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, Event{ID: e.ID, Type: e.Type, At: e.At, Node: e.Node, Message: e.Message, Data: e.Data})
	}
	return http.StatusOK, out, nil
}

// liveBackend is a backend whose worker can show what a running command wrote.
type liveBackend interface {
	LiveOutput(runID int64) (stdout, stderr []byte, ok bool)
}

// runLive answers what a running run's command has written so far: from this node's
// worker when it runs here, else from the node that runs it (forwarded there).
func (s *Server) runLive(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	local := func(state string) {
		v := LiveOutput{Run: id, State: state, Node: s.b.NodeID()}
		if lb, ok := s.b.(liveBackend); ok {
			var o, e []byte
			if o, e, v.Live = lb.LiveOutput(id); v.Live {
				v.Stdout, v.Stderr = string(o), string(e)
			}
		}
		writeJSON(w, http.StatusOK, v)
	}
	if r.Header.Get(forwardedHeader) != "" && principalOf(r).Role == auth.Peer {
		local(string(store.RunRunning)) // the forwarding node read the run: it runs here
		return
	}
	run, err := s.store.RunGet(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case run.State != store.RunRunning || run.Node == "":
		writeJSON(w, http.StatusOK, LiveOutput{Run: id, State: string(run.State), Node: run.Node})
	case run.Node == s.b.NodeID():
		local(string(run.State))
	default:
		s.forward(w, r, run.Node, nil)
	}
}
