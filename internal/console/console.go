// Package console is tandem's web console, served by every node at /: server-rendered
// html/template pages (embedded), complete without JavaScript, kept live by one
// Server-Sent Events stream per page whose named events each replace one panel (htmx
// and its SSE extension, vendored under static/).
//
// The console is a client of the node's own REST API, in process: every read and every
// action goes through the API's handlers with the browser session's token, so roles,
// audit events, secret masking, forwarding to the node concerned and error fields are
// the API's, never re-implemented here. The one thing read around the API is the
// server-status table, which a single poller per node reads at most once a second and
// shares between every open status page.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// StatusSource builds the server-status table (a node: api.Backend's Status).
type StatusSource interface {
	Status(ctx context.Context) (api.Status, error)
}

// SessionRevoker ends the login session whose secret hashes to hash, for by (who
// logged out) from client.
type SessionRevoker func(ctx context.Context, hash, by, client string) error

// PollIntervalDefault is how often the shared status poller reads the status while a
// status page is open.
const PollIntervalDefault = time.Second

// Params configure a Console.
type Params struct {
	// API is the node's REST API handler (the mux api.Server registered on).
	API http.Handler
	// Status is read by the shared poller.
	Status StatusSource
	// Auth turns a session cookie into a principal.
	Auth *auth.Authenticator
	// Revoke ends a session on logout (nil: the session just expires).
	Revoke SessionRevoker
	// NodeID is the node serving the console.
	NodeID string
	// ReadOnly refuses every action on this node (console.read_only).
	ReadOnly bool
	Log      *slog.Logger
	// Now is the node's clock (default time.Now).
	Now func() time.Time
	// PollInterval of the shared status poller (default PollIntervalDefault).
	PollInterval time.Duration
}

// Console serves the web console. Close ends its live streams.
type Console struct {
	p      Params
	pages  map[string]*template.Template
	static http.Handler
	hub    *statusHub
	ctx    context.Context // ends on Close: live streams return
	cancel context.CancelFunc
	wg     sync.WaitGroup
	routes []Route
}

// Route is one console endpoint and the role it needs.
type Route struct {
	Method, Pattern string
	Role            auth.Role
}

// New returns a console.
func New(p Params) (*Console, error) {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.PollInterval <= 0 {
		p.PollInterval = PollIntervalDefault
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{p: p, pages: pages, static: http.StripPrefix("/static/", http.FileServerFS(sub)), ctx: ctx, cancel: cancel}
	c.hub = newStatusHub(p.Status, p.PollInterval, p.Log, &c.wg)
	return c, nil
}

// Close ends the live streams and the status poller and waits for them. Safe to call
// twice.
func (c *Console) Close() {
	c.cancel()
	c.hub.close()
	c.wg.Wait()
}

// Routes lists the console's endpoints with their roles (after Register).
func (c *Console) Routes() []Route { return c.routes }

// Register adds the console's routes to mux (beside the API's).
func (c *Console) Register(mux *http.ServeMux) {
	c.routes = nil
	c.route(mux, "GET /static/", auth.Public, c.static.ServeHTTP)
	c.route(mux, "GET /login", auth.Public, c.loginPage)
	c.route(mux, "POST /login", auth.Public, c.loginSubmit)
	c.route(mux, "POST /logout", auth.Any, c.logout)
	c.route(mux, "GET /{$}", auth.Viewer, c.statusPage)
	c.route(mux, "GET /confirm", auth.Viewer, c.confirmPage)
	for _, a := range []string{"suspend", "resume", "standby"} {
		c.route(mux, "POST /nodes/{id}/"+a, auth.Operator, c.nodeAction(a))
	}
	for _, a := range []string{"stop", "restart"} {
		c.route(mux, "POST /nodes/{id}/"+a, auth.Admin, c.nodeAction(a))
	}
	c.route(mux, "POST /switch", auth.Operator, c.switchAction)
	c.route(mux, "GET /stream/status", auth.Viewer, c.statusStream)
	c.registerJobs(mux)
	c.registerRuns(mux)
	c.registerEvents(mux)
	c.registerSync(mux)
}
