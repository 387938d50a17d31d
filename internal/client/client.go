// Package client is the Go client of tandem's REST API. It takes a list of server
// addresses and moves to the next one when a server does not answer, so a caller keeps
// working while a node is down.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api"
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

// Client talks to a tandem cluster.
type Client struct {
	servers []string
	http    *http.Client
	mu      sync.Mutex
	cur     int
}

// New returns a client for the given server URLs ("http://host:port"; a bare host:port
// is taken as http).
func New(servers []string) *Client {
	var list []string
	for _, s := range servers {
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
	return &Client{servers: list, http: &http.Client{Timeout: 60 * time.Second}}
}

// Servers returns the server list in use.
func (c *Client) Servers() []string { return c.servers }

// do sends a request to the current server, moving on to the others when one cannot be
// reached. A server's own answer (even an error) ends the attempt.
func (c *Client) do(ctx context.Context, method, path string, body []byte, ctype string) (*http.Response, error) {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	for k := range c.servers {
		i := (start + k) % len(c.servers)
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.servers[i]+path, rd)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
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

// call sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, body []byte, ctype string, out any) error {
	resp, err := c.do(ctx, method, path, body, ctype)
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
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var e api.Error
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	return &Error{Status: resp.StatusCode, Message: e.Error, Field: e.Field}
}

// Status returns the server-status table.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	return s, c.call(ctx, "GET", "/api/v1/status", nil, "", &s)
}

// JobApply creates or updates the jobs of a job file; format is "toml" or "json".
func (c *Client) JobApply(ctx context.Context, data []byte, format string) ([]api.ApplyResult, error) {
	var out []api.ApplyResult
	return out, c.call(ctx, "POST", "/api/v1/jobs?format="+url.QueryEscape(format), data, "application/"+format, &out)
}

// JobList lists the jobs.
func (c *Client) JobList(ctx context.Context) ([]api.Job, error) {
	var out []api.Job
	return out, c.call(ctx, "GET", "/api/v1/jobs", nil, "", &out)
}

// JobGet returns one job.
func (c *Client) JobGet(ctx context.Context, name string) (api.Job, error) {
	var out api.Job
	return out, c.call(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(name), nil, "", &out)
}

// JobDelete deletes a job; its runs stay as history.
func (c *Client) JobDelete(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/api/v1/jobs/"+url.PathEscape(name), nil, "", nil)
}

// JobPause pauses (true) or resumes (false) a job's schedules.
func (c *Client) JobPause(ctx context.Context, name string, paused bool) (api.Job, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var out api.Job
	return out, c.call(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(name)+"/"+verb, nil, "", &out)
}

// JobRun starts an on-demand run.
func (c *Client) JobRun(ctx context.Context, name string) (api.Run, error) {
	var out api.Run
	return out, c.call(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(name)+"/run", nil, "", &out)
}

// RunListParams filters RunList.
type RunListParams struct {
	Job    string
	States []string
	Limit  int
	Before int64
}

// RunList lists runs, newest first.
func (c *Client) RunList(ctx context.Context, p RunListParams) ([]api.Run, error) {
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
	var out []api.Run
	return out, c.call(ctx, "GET", "/api/v1/runs?"+q.Encode(), nil, "", &out)
}

// RunGet returns one run with its captured output and output files.
func (c *Client) RunGet(ctx context.Context, id int64) (api.Run, error) {
	var out api.Run
	return out, c.call(ctx, "GET", "/api/v1/runs/"+strconv.FormatInt(id, 10), nil, "", &out)
}

// RunCancel cancels a run.
func (c *Client) RunCancel(ctx context.Context, id int64) (api.Run, error) {
	var out api.Run
	return out, c.call(ctx, "POST", "/api/v1/runs/"+strconv.FormatInt(id, 10)+"/cancel", nil, "", &out)
}

// RunWait polls a run until it is final or ctx ends.
func (c *Client) RunWait(ctx context.Context, id int64, every time.Duration) (api.Run, error) {
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
func (c *Client) OutputList(ctx context.Context, id int64) ([]api.Output, error) {
	var out []api.Output
	return out, c.call(ctx, "GET", "/api/v1/runs/"+strconv.FormatInt(id, 10)+"/outputs", nil, "", &out)
}

// OutputGet writes one output file of a run to w.
func (c *Client) OutputGet(ctx context.Context, id int64, name string, w io.Writer) error {
	resp, err := c.do(ctx, "GET", "/api/v1/runs/"+strconv.FormatInt(id, 10)+"/outputs/"+escapePath(name), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("download %s of run %d: %w", name, id, err)
	}
	return nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

// Events lists recent events, newest first.
func (c *Client) Events(ctx context.Context, typ string, limit int) ([]api.Event, error) {
	q := url.Values{}
	if typ != "" {
		q.Set("type", typ)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []api.Event
	return out, c.call(ctx, "GET", "/api/v1/events?"+q.Encode(), nil, "", &out)
}

// Switch asks the cluster's primary to hand its role over to `to` (the best standby
// when empty). Any server accepts it and forwards it to the primary.
func (c *Client) Switch(ctx context.Context, to string) (api.SwitchResult, error) {
	body, _ := json.Marshal(api.SwitchRequest{To: to})
	var out api.SwitchResult
	return out, c.call(ctx, "POST", "/api/v1/switch", body, "application/json", &out)
}

// NodeAction performs an operator action (suspend, resume, standby, stop, restart) on a
// node. Any server accepts it and forwards it to that node.
func (c *Client) NodeAction(ctx context.Context, node, action string) (api.NodeActionResult, error) {
	var out api.NodeActionResult
	return out, c.call(ctx, "POST", "/api/v1/nodes/"+url.PathEscape(node)+"/"+url.PathEscape(action), nil, "", &out)
}
