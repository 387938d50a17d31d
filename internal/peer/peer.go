// Package peer is the one node-to-node HTTP client: hints (look at the lease now, look
// for outputs to copy), forwarded operator actions, and output transfers. Every call one
// node makes to another goes through a Client, so that the transport's security (TLS, the
// cluster secret) is decided here and nowhere else.
//
// Calls are hints or bulk transfers: correctness never depends on one arriving (every
// receiver also polls the repository).
package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults.
const (
	// CallTimeoutDefault bounds a hint or a forwarded action, answer included.
	CallTimeoutDefault = 30 * time.Second
	// ConnectTimeoutDefault bounds connecting to a peer and waiting for its answer to
	// begin (transfers included: their bodies may then take as long as they need).
	ConnectTimeoutDefault = 10 * time.Second
)

// Headers one node sets on a request to another.
const (
	// ForwardedHeader marks a request one node forwarded to another, so it is never
	// forwarded twice (two nodes with different views must not bounce it forever).
	ForwardedHeader = "X-Tandem-Forwarded-By"
	// RequesterHeader carries, on a forwarded request, who asked the forwarding node.
	RequesterHeader = "X-Tandem-Requested-By"
	// SHA256Header carries an output file's SHA-256 (hex) with the file.
	SHA256Header = "X-Tandem-SHA256"
)

// Client calls other nodes. Safe for concurrent use.
type Client struct {
	calls     *http.Client // hints and actions: bounded as a whole
	transfers *http.Client // output files: bounded by the caller's context
	key       atomic.Pointer[auth.ClusterKey]
	scheme    atomic.Pointer[string] // "https" once SetTLS was called
}

// SetTLS makes the client call other nodes over HTTPS, trusting the certificates roots
// signs (nil: the system's roots). Call it before the first call.
func (c *Client) SetTLS(roots *x509.CertPool) {
	c.calls.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots} // one transport for calls and transfers
	https := "https"
	c.scheme.Store(&https)
}

// url is the address of path (with its query) on the node at addr.
func (c *Client) url(addr, path string) string {
	if s := c.scheme.Load(); s != nil {
		return *s + "://" + addr + path
	}
	return URL(addr, path)
}

// SetKey makes the client sign every request with the cluster secret's key (before
// its first call; a node learns the secret as it starts).
func (c *Client) SetKey(k *auth.ClusterKey) { c.key.Store(k) }

// Verify checks that r was signed with the cluster secret (auth.PeerVerifier).
func (c *Client) Verify(r *http.Request) (string, error) {
	k := c.key.Load()
	if k == nil {
		return "", errors.New("this node has no cluster secret")
	}
	return k.Verify(r)
}

// send signs req (whose body is body) and sends it with hc.
func (c *Client) send(hc *http.Client, req *http.Request, body []byte) (*http.Response, error) {
	if k := c.key.Load(); k != nil {
		k.Sign(req, body)
	}
	return hc.Do(req)
}

// New returns a client.
func New() *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: ConnectTimeoutDefault, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = ConnectTimeoutDefault
	tr.MaxIdleConnsPerHost = 16
	return &Client{calls: &http.Client{Transport: tr, Timeout: CallTimeoutDefault}, transfers: &http.Client{Transport: tr}}
}

// URL is the plain-HTTP address of path (with its query) on the node at addr.
func URL(addr, path string) string { return "http://" + addr + path }

// newRequest builds a request for path on the node at addr.
func (c *Client) newRequest(ctx context.Context, method, addr, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(addr, path), body)
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", addr, err)
	}
	return req, nil
}

// post sends a POST whose answer only matters by its status.
func (c *Client) post(ctx context.Context, addr, path string, body any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	req, err := c.newRequest(ctx, http.MethodPost, addr, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(c.calls, req, b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("node at %s answered %s", addr, resp.Status)
	}
	return nil
}

// LeaseHint tells the node at addr to look at the lease now.
func (c *Client) LeaseHint(ctx context.Context, addr string) error {
	return c.post(ctx, addr, "/api/v1/internal/lease-hint", nil)
}

// WorkHint tells the node at addr that runs were assigned to it.
func (c *Client) WorkHint(ctx context.Context, addr string) error {
	return c.post(ctx, addr, "/api/v1/internal/work-hint", nil)
}

// OutputsHint tells the node at addr that outputs may need copies.
func (c *Client) OutputsHint(ctx context.Context, addr string) error {
	return c.post(ctx, addr, "/api/v1/internal/outputs-hint", nil)
}

// Switch asks the primary at addr to hand its role over to the node to.
func (c *Client) Switch(ctx context.Context, addr, to string) error {
	return c.post(ctx, addr, "/api/v1/switch", map[string]string{"to": to})
}

// Forward sends r's method and path (with its query) and body to the node at addr, as
// forwarded by the node from on behalf of requester. The caller closes the answer's body.
func (c *Client) Forward(ctx context.Context, addr string, r *http.Request, body []byte, from, requester string) (*http.Response, error) {
	req, err := c.newRequest(ctx, r.Method, addr, r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ForwardedHeader, from)
	req.Header.Set(RequesterHeader, requester)
	return c.send(c.calls, req, body)
}

// OutputPath is where a node serves its own copy of an output to other nodes.
func OutputPath(ref store.OutputRef) string {
	parts := strings.Split(ref.Name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/api/v1/internal/outputs/" + strconv.FormatInt(ref.RunID, 10) + "/" + strconv.Itoa(ref.Attempt) + "/" + strings.Join(parts, "/")
}

// ErrNoCopy is returned by OutputOpen when the node has no good copy of the output.
var ErrNoCopy = errors.New("the node has no good copy")

// OutputOpen starts the transfer of the node at addr's own copy of an output. The
// caller reads the body (the file) to its end and closes it; its size is the answer's
// ContentLength. The transfer lasts as long as ctx allows.
func (c *Client) OutputOpen(ctx context.Context, addr string, ref store.OutputRef) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, addr, OutputPath(ref), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(c.transfers, req, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch output %s from %s: %w", ref, addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
		resp.Body.Close()
		err := fmt.Errorf("fetch output %s from %s: %s: %s", ref, addr, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			err = fmt.Errorf("%w: %w", err, ErrNoCopy)
		}
		return nil, err
	}
	return resp, nil
}
