package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// authServer serves node a's API with authentication on; tokens maps each role to a
// token of it; key signs requests as another node would; now is the authenticator's clock.
type authServer struct {
	srv    *httptest.Server
	st     store.Store
	api    *Server
	tokens map[auth.Role]string
	key    *auth.ClusterKey
	mu     sync.Mutex
	now    time.Time
}

func (a *authServer) clock() time.Time { a.mu.Lock(); defer a.mu.Unlock(); return a.now }

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &authServer{st: st, tokens: map[auth.Role]string{}, now: time.Now()}
	p := peer.New()
	a.key = auth.NewClusterKey([]byte("0123456789abcdef0123456789abcdef"), "b", nil)
	p.SetKey(a.key)
	b := &fakeBackend{status: Status{Primary: "a", Nodes: []NodeStatus{{ID: "a", Mode: "primary"}}},
		authn: auth.New(auth.Params{Store: st, Peers: p, Now: a.clock})}
	b.peer = p
	for _, r := range auth.Assignable {
		secret, _ := auth.NewSecret()
		if _, err := st.TokenCreate(context.Background(), store.TokenCreateParams{Name: "t-" + string(r), Kind: store.TokenAPI,
			Role: string(r), Hash: auth.HashSecret(secret), Audit: store.Audit{By: "test", Now: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		a.tokens[r] = secret
	}
	mux := http.NewServeMux()
	a.api = NewServer(st, b, slog.New(slog.DiscardHandler))
	a.api.Register(mux)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// pathOf fills a route's wildcards.
func pathOf(pattern string) string {
	id := "1" // a run's or a delivery's
	if strings.HasPrefix(pattern, "/api/v1/nodes/") {
		id = "a" // this node: nothing is forwarded
	}
	return strings.NewReplacer("{name...}", "x.csv", "{name}", "nosuch", "{id}", id, "{attempt}", "1").Replace(pattern)
}

// Every endpoint, every role and anonymous: allowed, or 401 (no credentials) / 403
// (a role too weak) with a JSON error naming the role needed.
func TestEndpointRoleMatrix(t *testing.T) {
	a := newAuthServer(t)
	routes := a.api.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes", len(routes))
	}
	who := []auth.Role{"", auth.Viewer, auth.Operator, auth.Admin, auth.Sync, auth.Peer}
	for _, rt := range routes {
		for _, role := range who {
			req, _ := http.NewRequest(rt.Method, a.srv.URL+pathOf(rt.Pattern), strings.NewReader(""))
			switch role {
			case "":
			case auth.Peer:
				a.key.Sign(req, nil)
			default:
				req.Header.Set("Authorization", "Bearer "+a.tokens[role])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e Error
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			name := rt.Method + " " + rt.Pattern + " as " + cmpOr(string(role), "anonymous")
			switch {
			case role.Allows(rt.Role):
				if resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Errorf("%s: %d %s, want allowed", name, resp.StatusCode, e.Error)
				}
			case role == "":
				if resp.StatusCode != 401 || !strings.Contains(e.Error, "needs the "+string(rt.Role)+" role") || e.Field != "authorization" {
					t.Errorf("%s: %d %+v, want 401 naming %s", name, resp.StatusCode, e, rt.Role)
				}
			default:
				if resp.StatusCode != 403 || !strings.Contains(e.Error, "needs the "+string(rt.Role)+" role") || e.Field != "role" {
					t.Errorf("%s: %d %+v, want 403 naming %s", name, resp.StatusCode, e, rt.Role)
				}
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// The role table is what the README documents; a route that declares no role cannot
// exist (route is the only way in), and the roles are as the issue gives them.
func TestRolesOfEndpoints(t *testing.T) {
	a := newAuthServer(t)
	want := map[string]auth.Role{
		"GET /healthz": auth.Public, "POST /api/v1/login": auth.Public, "GET /api/v1/jobs": auth.Viewer,
		"POST /api/v1/jobs": auth.Admin, "POST /api/v1/jobs/{name}/run": auth.Operator, "POST /api/v1/switch": auth.Operator,
		"POST /api/v1/nodes/{id}/stop": auth.Admin, "POST /api/v1/tokens": auth.Admin, "POST /api/v1/internal/work-hint": auth.Peer,
		"POST /api/v1/deliveries/{id}/retry": auth.Operator,
	}
	got := map[string]auth.Role{}
	for _, r := range a.api.Routes() {
		got[r.Method+" "+r.Pattern] = r.Role
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: role %q, want %q", k, got[k], v)
		}
	}
}

func do(t *testing.T, a *authServer, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A token is made (its secret shown once, only its hash kept), used (last used
// recorded), expires, and is revoked.
func TestTokenLifecycle(t *testing.T) {
	a := newAuthServer(t)
	admin := a.tokens[auth.Admin]
	code, body := do(t, a, "POST", "/api/v1/tokens", admin, `{"name":"ci","role":"operator","expires":"1h"}`)
	var tc TokenCreated
	if code != 201 || json.Unmarshal(body, &tc) != nil || !strings.HasPrefix(tc.Secret, "tdm_") || tc.Token.ExpiresAt == nil || tc.Token.CreatedBy != "token t-admin" {
		t.Fatalf("create: %d %s", code, body)
	}
	if len(tc.Secret) != len("tdm_")+43 {
		t.Fatalf("secret %q: want tdm_ and 32 bytes, base64url", tc.Secret)
	}
	stored, err := a.st.TokenByHash(context.Background(), auth.HashSecret(tc.Secret))
	if err != nil || stored.Hash == tc.Secret || strings.Contains(stored.Hash, tc.Secret[4:]) {
		t.Fatalf("stored: %+v %v", stored, err)
	}
	if code, body := do(t, a, "GET", "/api/v1/whoami", tc.Secret, ""); code != 200 || !strings.Contains(string(body), `"token ci"`) {
		t.Fatalf("use: %d %s", code, body)
	}
	_, body = do(t, a, "GET", "/api/v1/tokens", admin, "")
	if strings.Contains(string(body), tc.Secret) || !strings.Contains(string(body), `"last_used_at": "`) {
		t.Fatalf("list: %s", body)
	}
	a.mu.Lock()
	a.now = a.now.Add(2 * time.Hour)
	a.mu.Unlock()
	if code, body := do(t, a, "GET", "/api/v1/whoami", tc.Secret, ""); code != 401 || !strings.Contains(string(body), "expired") {
		t.Fatalf("expired: %d %s", code, body)
	}
	a.mu.Lock()
	a.now = time.Now()
	a.mu.Unlock()
	if code, _ := do(t, a, "DELETE", "/api/v1/tokens/ci", admin, ""); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := do(t, a, "GET", "/api/v1/whoami", tc.Secret, ""); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	evs, _ := a.st.EventList(context.Background(), store.EventListParams{Type: "token.created"})
	if len(evs) == 0 || evs[0].Data["by"] != "token t-admin" || !strings.HasPrefix(evs[0].Data["client"].(string), "127.0.0.1:") {
		t.Fatalf("audit: %+v", evs)
	}
}

// Users log in with their password; after five failures from one address the sixth
// attempt is refused, even with the right password, until the window ends.
func TestLoginAndRateLimit(t *testing.T) {
	a := newAuthServer(t)
	admin := a.tokens[auth.Admin]
	if code, body := do(t, a, "POST", "/api/v1/users", admin, `{"name":"alice","role":"viewer","password":"correct horse"}`); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	code, body := do(t, a, "POST", "/api/v1/login", "", `{"user":"alice","password":"correct horse"}`)
	var lr LoginResult
	if code != 200 || json.Unmarshal(body, &lr) != nil || lr.Role != "viewer" {
		t.Fatalf("login: %d %s", code, body)
	}
	if code, body := do(t, a, "GET", "/api/v1/whoami", lr.Token, ""); code != 200 || !strings.Contains(string(body), "user alice") {
		t.Fatalf("session: %d %s", code, body)
	}
	if code, body := do(t, a, "POST", "/api/v1/jobs", lr.Token, ""); code != 403 || !strings.Contains(string(body), "needs the admin role") {
		t.Fatalf("viewer applies: %d %s", code, body)
	}
	for i := range auth.LoginFailuresMax {
		if code, _ := do(t, a, "POST", "/api/v1/login", "", `{"user":"alice","password":"wrong"}`); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code, body := do(t, a, "POST", "/api/v1/login", "", `{"user":"alice","password":"correct horse"}`); code != 429 || !strings.Contains(string(body), "too many failed logins") {
		t.Fatalf("limited: %d %s", code, body)
	}
	a.mu.Lock()
	a.now = a.now.Add(auth.LoginWindow)
	a.mu.Unlock()
	if code, _ := do(t, a, "POST", "/api/v1/login", "", `{"user":"alice","password":"correct horse"}`); code != 200 {
		t.Fatalf("after the window: %d", code)
	}
	// A new password ends the sessions.
	if code, _ := do(t, a, "POST", "/api/v1/users/alice/password", admin, `{"password":"battery staple"}`); code != 200 {
		t.Fatal(code)
	}
	if code, _ := do(t, a, "GET", "/api/v1/whoami", lr.Token, ""); code != 401 {
		t.Fatalf("session after password change: %d", code)
	}
}

// A logged-in user changes their own password with the current one (a wrong one is
// refused 403 and counts as a failed login), getting a new session while the others end;
// logout ends the session it is sent with, and only sessions log out.
func TestOwnPasswordAndLogout(t *testing.T) {
	a := newAuthServer(t)
	admin := a.tokens[auth.Admin]
	if code, body := do(t, a, "POST", "/api/v1/users", admin, `{"name":"bob","role":"viewer","password":"correct horse"}`); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	login := func(pw string) LoginResult {
		t.Helper()
		code, body := do(t, a, "POST", "/api/v1/login", "", `{"user":"bob","password":"`+pw+`"}`)
		var lr LoginResult
		if code != 200 || json.Unmarshal(body, &lr) != nil {
			t.Fatalf("login: %d %s", code, body)
		}
		return lr
	}
	s1, s2 := login("correct horse"), login("correct horse")
	if code, body := do(t, a, "POST", "/api/v1/password", s1.Token, `{"current_password":"wrong","password":"battery staple"}`); code != 403 || !strings.Contains(string(body), "current_password") {
		t.Fatalf("wrong current password: %d %s", code, body)
	}
	if code, body := do(t, a, "POST", "/api/v1/password", s1.Token, `{"current_password":"correct horse","password":"short"}`); code != 400 || !strings.Contains(string(body), `"password"`) {
		t.Fatalf("too short: %d %s", code, body)
	}
	if code, body := do(t, a, "POST", "/api/v1/password", admin, `{"current_password":"x","password":"battery staple"}`); code != 400 || !strings.Contains(string(body), "tandem user passwd") {
		t.Fatalf("an API token changing its own password: %d %s", code, body)
	}
	code, body := do(t, a, "POST", "/api/v1/password", s1.Token, `{"current_password":"correct horse","password":"battery staple"}`)
	var fresh LoginResult
	if code != 200 || json.Unmarshal(body, &fresh) != nil || fresh.Token == "" || fresh.User != "bob" {
		t.Fatalf("own password: %d %s", code, body)
	}
	for _, old := range []string{s1.Token, s2.Token} {
		if code, _ := do(t, a, "GET", "/api/v1/whoami", old, ""); code != 401 {
			t.Fatalf("an old session after the change: %d", code)
		}
	}
	if code, _ := do(t, a, "GET", "/api/v1/whoami", fresh.Token, ""); code != 200 {
		t.Fatalf("the new session: %d", code)
	}
	if code, _ := do(t, a, "POST", "/api/v1/login", "", `{"user":"bob","password":"correct horse"}`); code != 401 {
		t.Fatalf("the old password still logs in: %d", code)
	}
	other := login("battery staple")
	if code, body := do(t, a, "POST", "/api/v1/logout", admin, ""); code != 400 || !strings.Contains(string(body), "not a login session") {
		t.Fatalf("logout with an API token: %d %s", code, body)
	}
	if code, body := do(t, a, "POST", "/api/v1/logout", fresh.Token, ""); code != 200 {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code, _ := do(t, a, "GET", "/api/v1/whoami", fresh.Token, ""); code != 401 {
		t.Fatalf("the session after logout: %d", code)
	}
	if code, _ := do(t, a, "GET", "/api/v1/whoami", other.Token, ""); code != 200 {
		t.Fatalf("another session of the user after logout: %d", code)
	}
}

// A peer request signed with another secret, or not signed, is refused.
func TestPeerRequestNeedsClusterSecret(t *testing.T) {
	a := newAuthServer(t)
	req, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/internal/work-hint", nil)
	auth.NewClusterKey([]byte("another secret, not this cluster"), "x", nil).Sign(req, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	if code, _ := do(t, a, "POST", "/api/v1/internal/work-hint", a.tokens[auth.Admin], ""); code != 403 {
		t.Fatalf("admin token on a peer route: %d", code)
	}
	req, _ = http.NewRequest("POST", a.srv.URL+"/api/v1/internal/work-hint", nil)
	a.key.Sign(req, nil)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("signed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// The README's endpoint → role table lists every endpoint with the role it needs.
func TestREADMERoleTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range newAuthServer(t).api.Routes() {
		row := fmt.Sprintf("| `%s %s` | %s |", r.Method, r.Pattern, r.Role)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README: no row %s", row)
		}
	}
}

// Every change made through the API is an event naming the token and the client's
// address: applying, pausing, running, cancelling, deleting a job.
func TestChangesAreAudited(t *testing.T) {
	a := newAuthServer(t)
	admin, op := a.tokens[auth.Admin], a.tokens[auth.Operator]
	steps := []struct{ method, path, token, body string }{
		{"POST", "/api/v1/jobs?format=toml", admin, "name = \"j\"\n[noop]\n"},
		{"POST", "/api/v1/jobs/j/pause", op, ""},
		{"POST", "/api/v1/jobs/j/resume", op, ""},
		{"POST", "/api/v1/jobs/j/run", op, ""},
		{"POST", "/api/v1/runs/1/cancel", op, ""},
		{"DELETE", "/api/v1/jobs/j", admin, ""},
	}
	for _, s := range steps {
		if code, body := do(t, a, s.method, s.path, s.token, s.body); code >= 300 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, code, body)
		}
	}
	evs, err := a.st.EventList(context.Background(), store.EventListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"job.applied": "token t-admin", "job.paused": "token t-operator", "job.resumed": "token t-operator",
		"run.requested": "token t-operator", "run.cancel_requested": "token t-operator", "job.deleted": "token t-admin"}
	for _, e := range evs {
		if by, ok := want[e.Type]; ok && e.Data["by"] == by && strings.HasPrefix(e.Data["client"].(string), "127.0.0.1:") &&
			strings.Contains(e.Message, "by "+by) {
			delete(want, e.Type)
		}
	}
	if len(want) > 0 {
		t.Fatalf("no audit events %v in %+v", want, evs)
	}
}
