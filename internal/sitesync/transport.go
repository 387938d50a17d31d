package sitesync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// RemoteError is a target's answer that refused a call.
type RemoteError struct {
	Server  string
	Status  int
	Field   string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Server, e.Status, e.Message)
}

// Fields a target's refusal names, which the sender branches on.
const (
	FieldCursor = "cursor" // the batch does not follow the cursor: read it again
	FieldSource = "source" // the target takes changes from another source
	FieldTarget = "target" // the target is not an active target (new or promoted)
)

// transport calls the target's servers, moving to the next when one does not answer
// (every sync call may be sent twice: the target's cursor makes a second a no-op).
type transport struct {
	servers []string
	token   string
	timeout time.Duration
	http    *http.Client
	mu      sync.Mutex
	cur     int
}

func newTransport(servers []string, token string, ca []byte, timeout time.Duration) *transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(ca) > 0 {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	list := make([]string, 0, len(servers))
	for _, s := range servers {
		list = append(list, strings.TrimRight(s, "/"))
	}
	return &transport{servers: list, token: token, timeout: timeout, http: &http.Client{Transport: tr}}
}

// call sends body (nil: GET) to path and decodes the answer into out, allowing each
// server the transport's timeout times scale. It returns the server that answered.
func (t *transport) call(ctx context.Context, scale int, path string, body, out any) (string, error) {
	var data []byte
	method := http.MethodGet
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", path, err)
		}
		data, method = b, http.MethodPost
	}
	t.mu.Lock()
	start := t.cur
	t.mu.Unlock()
	var errs []error
	for k := range t.servers {
		i := (start + k) % len(t.servers)
		server := t.servers[i]
		server, err := t.one(ctx, time.Duration(max(scale, 1))*t.timeout, server, method, path, data, body != nil, out)
		if err != nil && ctx.Err() != nil {
			return "", ctx.Err()
		}
		var re *RemoteError
		switch {
		case errors.As(err, &re) && re.Status >= 502 && re.Status <= 504:
			errs = append(errs, err) // a node without its repository: try the next
			continue
		case err != nil && !errors.As(err, &re):
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		t.mu.Lock()
		t.cur = i
		t.mu.Unlock()
		return server, err
	}
	return "", fmt.Errorf("no target server answered: %w", errors.Join(errs...))
}

// one is one call to one server.
func (t *transport) one(ctx context.Context, timeout time.Duration, server, method, path string, data []byte, hasBody bool, out any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, server+path, bytes.NewReader(data))
	if err != nil {
		return server, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return server, err
	}
	return server, decode(server, resp, out)
}

func decode(server string, resp *http.Response, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error, Field string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &RemoteError{Server: server, Status: resp.StatusCode, Field: e.Field, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s: %w", server, err)
	}
	return nil
}
