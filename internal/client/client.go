// Package client is the Go client of tandem's REST API. It takes a list of server
// addresses and moves to the next one when a server does not answer, so a caller keeps
// working while a node is down.
package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// ServerDefault is the address used when none is given.
const ServerDefault = "http://127.0.0.1:8200"

// Error is an error answered by a server.
type Error struct {
	Status  int
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

// TimeoutDefault is how long a client waits for a server to accept its connection, and
// then for the server's answer to begin, before it gives up on that server.
const TimeoutDefault = 3 * time.Second

// Config configures a Client.
type Config struct {
	// Servers are the server URLs ("http://host:port"; a bare host:port is taken as
	// http; each may hold several, comma separated). Default: ServerDefault.
	Servers []string
	// Timeout bounds, per server, the connect and the wait for an answer's headers (not
	// the download of a body). Default: TimeoutDefault.
	Timeout time.Duration
	// Token is sent as Authorization: Bearer with every request ("": none).
	Token string
	// CA is a PEM bundle of the certificates trusted for https:// servers (nil: the
	// system's roots).
	CA []byte
}

// Client talks to a tandem cluster.
type Client struct {
	servers []string
	timeout time.Duration
	token   string
	http    *http.Client
	patient *http.Client // for the last server left to try (LastServerWait)
	mu      sync.Mutex
	cur     int
}

// New returns a client for the given server URLs with the default timeout.
func New(servers []string) *Client { return NewConfig(Config{Servers: servers}) }

// NewConfig returns a client configured by c.
func NewConfig(c Config) *Client {
	var list []string
	for _, s := range c.Servers {
		for _, one := range strings.Split(s, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			if !strings.Contains(one, "://") {
				one = "http://" + one
			}
			list = append(list, strings.TrimRight(one, "/"))
		}
	}
	if len(list) == 0 {
		list = []string{ServerDefault}
	}
	timeout := cmp.Or(c.Timeout, TimeoutDefault)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	if len(c.CA) > 0 {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(c.CA)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	// The last server left to try gets longer to answer: there is nothing to move on to,
	// and a live server that is merely busy should not be given up on.
	last := tr.Clone()
	last.ResponseHeaderTimeout = max(timeout, LastServerWait)
	// Redirects (to the node that keeps an output file) are followed by OutputGet, so
	// that a node that does not answer is told apart from the server that did.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{servers: list, timeout: timeout, token: c.Token,
		http:    &http.Client{Transport: tr, CheckRedirect: noRedirect},
		patient: &http.Client{Transport: last, CheckRedirect: noRedirect}}
}

// LastServerWait is how long the last server left to try has to send an answer's
// headers.
const LastServerWait = 60 * time.Second

// Servers returns the server list in use.
func (c *Client) Servers() []string { return c.servers }

// request is one API request.
type request struct {
	method, path string
	body         []byte
	ctype        string
	header       http.Header
	// idempotent: sending it twice does what sending it once does, so it may go to the
	// next server even when the previous one may have received it.
	idempotent bool
}

// do sends a request to the current server, moving on to the others when one cannot be
// reached. A server's own answer (even an error) ends the attempt. A request that is not
// idempotent moves on only when it cannot have reached the server (its connection was
// refused or never made): one that went unanswered may have been carried out.
func (c *Client) do(ctx context.Context, rq request) (*http.Response, error) {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	for k := range c.servers {
		i := (start + k) % len(c.servers)
		var rd io.Reader
		if rq.body != nil {
			rd = bytes.NewReader(rq.body)
		}
		req, err := http.NewRequestWithContext(ctx, rq.method, c.servers[i]+rq.path, rd)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		maps.Copy(req.Header, rq.header)
		c.authorize(req)
		if rq.ctype != "" {
			req.Header.Set("Content-Type", rq.ctype)
		}
		hc := c.http
		if k == len(c.servers)-1 {
			hc = c.patient
		}
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !rq.idempotent && !notSent(err) {
				return nil, fmt.Errorf("%s did not answer %s %s within %s; it may have carried it out, so it was not sent to another server (see tandem runs, tandem status): %w",
					c.servers[i], rq.method, rq.path, c.timeout, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", c.servers[i], err))
			continue
		}
		c.mu.Lock()
		c.cur = i
		c.mu.Unlock()
		return resp, nil
	}
	return nil, fmt.Errorf("no server answered: %w", errors.Join(errs...))
}

// notSent reports whether err proves the request never reached a server: the
// connection was not made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, rq request, out any) error {
	resp, err := c.do(ctx, rq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", rq.method, rq.path, err)
	}
	return nil
}

// get is an idempotent GET.
func get(path string) request { return request{method: "GET", path: path, idempotent: true} }

func decodeError(resp *http.Response) error {
	var e wire.Error
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	return &Error{Status: resp.StatusCode, Message: e.Error, Field: e.Field}
}

// Status returns the server-status table.
func (c *Client) Status(ctx context.Context) (wire.Status, error) {
	var s wire.Status
	return s, c.call(ctx, get("/api/v1/status"), &s)
}

// JobApply creates or updates the jobs of a job file; format is "toml" or "json".
func (c *Client) JobApply(ctx context.Context, data []byte, format string) ([]wire.ApplyResult, error) {
	var out []wire.ApplyResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/jobs?format=" + url.QueryEscape(format), body: data,
		ctype: "application/" + format, idempotent: true}, &out) // by name: the same file again changes nothing
}

// JobList lists the jobs.
func (c *Client) JobList(ctx context.Context) ([]wire.Job, error) {
	var out []wire.Job
	return out, c.call(ctx, get("/api/v1/jobs"), &out)
}

// JobGet returns one job.
func (c *Client) JobGet(ctx context.Context, name string) (wire.Job, error) {
	var out wire.Job
	return out, c.call(ctx, get("/api/v1/jobs/"+url.PathEscape(name)), &out)
}

// JobDelete deletes a job; its runs stay as history.
func (c *Client) JobDelete(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/api/v1/jobs/" + url.PathEscape(name), idempotent: true}, nil)
}

// JobPause pauses (true) or resumes (false) a job's schedules.
func (c *Client) JobPause(ctx context.Context, name string, paused bool) (wire.Job, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var out wire.Job
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/jobs/" + url.PathEscape(name) + "/" + verb, idempotent: true}, &out)
}

// JobRun starts an on-demand run. Each call sends a key of its own (Idempotency-Key),
// so it may try the next server after one that went unanswered: a server that did
// create the run answers the retry with that run.
func (c *Client) JobRun(ctx context.Context, name string) (wire.Run, error) {
	var out wire.Run
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/jobs/" + url.PathEscape(name) + "/run",
		header: http.Header{wire.IdempotencyKeyHeader: {rand.Text()}}, idempotent: true}, &out)
}

// RunListParams filters RunList.
type RunListParams struct {
	Job    string
	States []string
	Limit  int
	Before int64
}

// RunList lists runs, newest first.
func (c *Client) RunList(ctx context.Context, p RunListParams) ([]wire.Run, error) {
	q := url.Values{}
	if p.Job != "" {
		q.Set("job", p.Job)
	}
	if len(p.States) > 0 {
		q.Set("state", strings.Join(p.States, ","))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Before > 0 {
		q.Set("before", strconv.FormatInt(p.Before, 10))
	}
	var out []wire.Run
	return out, c.call(ctx, get("/api/v1/runs?"+q.Encode()), &out)
}

// RunGet returns one run with its captured output and output files.
func (c *Client) RunGet(ctx context.Context, id int64) (wire.Run, error) {
	var out wire.Run
	return out, c.call(ctx, get("/api/v1/runs/"+strconv.FormatInt(id, 10)), &out)
}

// RunCancel cancels a run.
func (c *Client) RunCancel(ctx context.Context, id int64) (wire.Run, error) {
	var out wire.Run
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/runs/" + strconv.FormatInt(id, 10) + "/cancel", idempotent: true}, &out)
}

// RunWait polls a run until it is final or ctx ends.
func (c *Client) RunWait(ctx context.Context, id int64, every time.Duration) (wire.Run, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r, err := c.RunGet(ctx, id)
		if err != nil {
			return r, err
		}
		switch r.State {
		case "succeeded", "failed", "canceled", "skipped", "missed":
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-t.C:
		}
	}
}

// OutputList lists a run's output files.
func (c *Client) OutputList(ctx context.Context, id int64) ([]wire.Output, error) {
	var out []wire.Output
	return out, c.call(ctx, get("/api/v1/runs/"+strconv.FormatInt(id, 10)+"/outputs"), &out)
}

// OutputGet writes one output file of a run to w. A server that does not keep the file
// redirects to the node that does; if that node does not answer, the error says so
// (other servers would only redirect there too).
func (c *Client) OutputGet(ctx context.Context, id int64, name string, w io.Writer) error {
	resp, err := c.do(ctx, get("/api/v1/runs/"+strconv.FormatInt(id, 10)+"/outputs/"+escapePath(name)))
	if err != nil {
		return err
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		resp.Body.Close()
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return fmt.Errorf("download %s of run %d: bad redirect %q: %w", name, id, loc, err)
		}
		req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		c.authorize(req)
		if resp, err = c.http.Do(req); err != nil {
			return fmt.Errorf("download %s of run %d: the node that keeps it, at %s, did not answer: %w", name, id, u.Host, err)
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), resp.Body); err != nil {
		return fmt.Errorf("download %s of run %d: %w", name, id, err)
	}
	if want, got := resp.Header.Get("X-Tandem-SHA256"), hex.EncodeToString(h.Sum(nil)); want != "" && got != want {
		return fmt.Errorf("download %s of run %d: the file received has SHA-256 %s, the server recorded %s", name, id, got, want)
	}
	return nil
}

// OutputFind lists outputs with their holders: of one run (run > 0) or the newest of
// every run, and only those not durable with underreplicated.
func (c *Client) OutputFind(ctx context.Context, run int64, underreplicated bool, limit int) ([]wire.Output, error) {
	q := url.Values{}
	if run > 0 {
		q.Set("run", strconv.FormatInt(run, 10))
	}
	if underreplicated {
		q.Set("underreplicated", "true")
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []wire.Output
	return out, c.call(ctx, get("/api/v1/outputs?"+q.Encode()), &out)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

// Events lists recent events, newest first.
func (c *Client) Events(ctx context.Context, typ string, limit int) ([]wire.Event, error) {
	q := url.Values{}
	if typ != "" {
		q.Set("type", typ)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []wire.Event
	return out, c.call(ctx, get("/api/v1/events?"+q.Encode()), &out)
}

// Switch asks the cluster's primary to hand its role over to `to` (the best standby
// when empty). Any server accepts it and forwards it to the primary.
func (c *Client) Switch(ctx context.Context, to string) (wire.SwitchResult, error) {
	body, _ := json.Marshal(wire.SwitchRequest{To: to})
	var out wire.SwitchResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/switch", body: body, ctype: "application/json"}, &out)
}

// NodeWeight sets a node's load-balancing weight (stored; it outlives the node's process).
func (c *Client) NodeWeight(ctx context.Context, node string, weight float64) (wire.WeightResult, error) {
	var out wire.WeightResult
	body, err := json.Marshal(wire.WeightRequest{Weight: weight})
	if err != nil {
		return out, err
	}
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/nodes/" + url.PathEscape(node) + "/weight", body: body,
		ctype: "application/json", idempotent: true}, &out)
}

// NodeAction performs an operator action (suspend, resume, standby, stop, restart) on a
// node. Any server accepts it and forwards it to that node. Suspend, resume and standby
// set a state, so they are idempotent; stop and restart are not.
func (c *Client) NodeAction(ctx context.Context, node, action string) (wire.NodeActionResult, error) {
	var out wire.NodeActionResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/nodes/" + url.PathEscape(node) + "/" + url.PathEscape(action),
		idempotent: action == "suspend" || action == "resume" || action == "standby"}, &out)
}
