package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// Route is one endpoint and the role it needs.
type Route struct {
	Method  string
	Pattern string // the path pattern, as the mux has it
	Role    auth.Role
}

// Routes lists every endpoint with its role (after Register): the README's table and the
// endpoint × role test are made from it.
func (s *Server) Routes() []Route { return s.routes }

type principalKey struct{}

// principalOf is who made the request (set by the route's guard).
func principalOf(r *http.Request) auth.Principal {
	if p, ok := r.Context().Value(principalKey{}).(auth.Principal); ok {
		return p
	}
	return auth.Anonymous
}

type inProcessKey struct{}

// WithPrincipal marks ctx as carrying a request this process has already authenticated
// as p (the console, calling the API's handlers in process for its browser session):
// the routes judge p's role without authenticating again. Only code in this process can
// set it; nothing a client sends can.
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, inProcessKey{}, p)
}

// route registers h for "METHOD PATTERN", guarded: the request's principal must have
// role. A route is reachable only through here, so every endpoint declares its role.
func (s *Server) route(mux *http.ServeMux, pattern string, role auth.Role, h http.HandlerFunc) {
	method, path, _ := cutPattern(pattern)
	s.routes = append(s.routes, Route{Method: method, Pattern: path, Role: role})
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if role == auth.Public {
			h(w, r)
			return
		}
		if s.auth == nil { // default deny: a server given no authenticator serves nothing else
			writeJSON(w, http.StatusUnauthorized, Error{Error: "this server has no authenticator: nothing but " +
				"public endpoints is served", Field: "authorization"})
			return
		}
		p, inProcess := r.Context().Value(inProcessKey{}).(auth.Principal)
		var err error
		if !inProcess {
			p, err = s.auth.Authenticate(r)
		}
		if err != nil {
			var msg string
			switch {
			case errors.Is(err, auth.ErrNoCredentials):
				msg = fmt.Sprintf("authentication required: %s %s needs the %s role; give a token (--token, TANDEM_TOKEN, "+
					"tandem login, or the bootstrap admin token in the data directory; see the README)", method, path, role)
			case errors.Is(err, auth.ErrBadToken):
				msg = fmt.Sprintf("%v: %s %s needs the %s role", err, method, path, role)
			default:
				if !auth.IsPeerRequest(r) {
					s.writeError(w, r, err)
					return
				}
				msg = err.Error()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
			writeJSON(w, http.StatusUnauthorized, Error{Error: msg, Field: "authorization"})
			return
		}
		if !p.Role.Allows(role) {
			have := string(p.Role)
			writeJSON(w, http.StatusForbidden, Error{Error: fmt.Sprintf("%s (role %s) may not %s %s: it needs the %s role",
				p.Name, have, method, path, role), Field: "role"})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func cutPattern(p string) (method, path string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == ' ' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

// audit is who made r, and from where, for the events of what it changes.
func (s *Server) audit(r *http.Request) store.Audit {
	return store.Audit{By: principalOf(r).Name, Client: r.RemoteAddr, Node: s.b.NodeID(), Now: s.now()}
}

func (s *Server) registerAuth(mux *http.ServeMux) {
	s.route(mux, "POST /api/v1/login", auth.Public, s.handle(s.login))
	s.route(mux, "POST /api/v1/logout", auth.Any, s.handle(s.logout))
	s.route(mux, "GET /api/v1/whoami", auth.Any, s.handle(s.whoami))
	s.route(mux, "POST /api/v1/password", auth.Any, s.handle(s.ownPassword))
	s.route(mux, "GET /api/v1/users", auth.Admin, s.handle(s.userList))
	s.route(mux, "POST /api/v1/users", auth.Admin, s.handle(s.userAdd))
	s.route(mux, "DELETE /api/v1/users/{name}", auth.Admin, s.handle(s.userDelete))
	s.route(mux, "POST /api/v1/users/{name}/password", auth.Admin, s.handle(s.userPassword))
	s.route(mux, "GET /api/v1/tokens", auth.Admin, s.handle(s.tokenList))
	s.route(mux, "POST /api/v1/tokens", auth.Admin, s.handle(s.tokenCreate))
	s.route(mux, "DELETE /api/v1/tokens/{name}", auth.Admin, s.handle(s.tokenRevoke))
}

func (s *Server) whoami(r *http.Request) (int, any, error) {
	p := principalOf(r)
	return http.StatusOK, WhoAmI{Name: p.Name, Role: string(p.Role)}, nil
}

func (s *Server) userList(r *http.Request) (int, any, error) {
	us, err := s.store.UserList(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, UserFrom(u))
	}
	return http.StatusOK, out, nil
}

func (s *Server) userAdd(r *http.Request) (int, any, error) {
	var req UserRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if !validName(req.Name) {
		return 0, nil, &badRequest{"name", fmt.Sprintf("user name %q: 1 to 64 letters, digits, '.', '_', '-' or '@'", req.Name)}
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return 0, nil, &badRequest{"role", err.Error()}
	}
	hash, err := checkedHash(req.Password)
	if err != nil {
		return 0, nil, err
	}
	u, err := s.store.UserAdd(r.Context(), store.UserAddParams{Name: req.Name, Role: string(role), Hash: hash, Audit: s.audit(r)})
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("user added", "user", u.Name, "role", u.Role, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusCreated, UserFrom(u), nil
}

func checkedHash(password string) (string, error) {
	if len(password) < auth.PasswordMin || len(password) > 1024 {
		return "", &badRequest{"password", fmt.Sprintf("a password must be %d to 1024 bytes", auth.PasswordMin)}
	}
	return auth.HashPassword(password)
}

func (s *Server) userDelete(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := s.store.UserDelete(r.Context(), store.UserDeleteParams{Name: name, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("user deleted", "user", name, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

func (s *Server) userPassword(r *http.Request) (int, any, error) {
	var req PasswordRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	hash, err := checkedHash(req.Password)
	if err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if err := s.store.UserSetPassword(r.Context(), store.UserSetPasswordParams{Name: name, Hash: hash, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("password changed", "user", name, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusOK, map[string]string{"user": name}, nil
}

// SessionTTL is how long a login session lasts.
const SessionTTL = 12 * time.Hour

func (s *Server) login(r *http.Request) (int, any, error) {
	if s.auth == nil {
		return 0, nil, &badRequest{"user", "this server has no authenticator"}
	}
	var req LoginRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	u, err := s.auth.Login(r.Context(), req.User, req.Password, r.RemoteAddr)
	var le *auth.LimitError
	switch {
	case errors.As(err, &le):
		s.log.Warn("login refused: too many failures", "user", req.User, "client", r.RemoteAddr)
		return 0, nil, &statusError{http.StatusTooManyRequests, "password", err.Error(), strconv.Itoa(int(le.RetryAfter.Seconds()) + 1)}
	case errors.Is(err, auth.ErrLoginFailed):
		s.log.Warn("login failed", "user", req.User, "client", r.RemoteAddr)
		return 0, nil, &statusError{code: http.StatusUnauthorized, field: "password", msg: err.Error()}
	case err != nil:
		return 0, nil, err
	}
	res, err := s.newSession(r, u)
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("user logged in", "user", u.Name, "client", r.RemoteAddr)
	return http.StatusOK, res, nil
}

// newSession makes a login session for u.
func (s *Server) newSession(r *http.Request, u store.User) (LoginResult, error) {
	secret, err := auth.NewSecret()
	if err != nil {
		return LoginResult{}, err
	}
	exp := s.now().Add(SessionTTL)
	a := s.audit(r)
	a.By = "user " + u.Name
	if _, err := s.store.TokenCreate(r.Context(), store.TokenCreateParams{Name: "session-" + auth.HashSecret(secret)[:16], Kind: store.TokenSession,
		Role: u.Role, User: u.Name, Hash: auth.HashSecret(secret), ExpiresAt: &exp, Audit: a}); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Token: secret, User: u.Name, Role: u.Role, ExpiresAt: exp}, nil
}

// logout ends the login session the request carries.
func (s *Server) logout(r *http.Request) (int, any, error) {
	p := principalOf(r)
	if p.User == "" || p.TokenID == 0 {
		return 0, nil, &badRequest{"authorization", fmt.Sprintf("%s is not a login session: logout ends the session of tandem login "+
			"(an API token is revoked by an admin: tandem token revoke NAME)", p.Name)}
	}
	if err := s.store.SessionEnd(r.Context(), store.SessionEndParams{ID: p.TokenID, User: p.User, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("user logged out", "user", p.User, "client", r.RemoteAddr)
	return http.StatusOK, map[string]string{"logged_out": p.User}, nil
}

// ownPassword changes the password of the user whose session the request carries,
// given the current one (checked, and limited, as a login is). Every session of the
// user ends; the answer is a new session for this client.
func (s *Server) ownPassword(r *http.Request) (int, any, error) {
	p := principalOf(r)
	if p.User == "" {
		return 0, nil, &badRequest{"authorization", fmt.Sprintf("%s is not a user's login session: log in (tandem login) to change "+
			"your own password; an admin sets anyone's (tandem user passwd NAME)", p.Name)}
	}
	if s.auth == nil {
		return 0, nil, &badRequest{"authorization", "this server has no authenticator"}
	}
	var req OwnPasswordRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	u, err := s.auth.Login(r.Context(), p.User, req.Current, r.RemoteAddr)
	var le *auth.LimitError
	switch {
	case errors.As(err, &le):
		s.log.Warn("password change refused: too many failures", "user", p.User, "client", r.RemoteAddr)
		return 0, nil, &statusError{http.StatusTooManyRequests, "current_password", err.Error(), strconv.Itoa(int(le.RetryAfter.Seconds()) + 1)}
	case errors.Is(err, auth.ErrLoginFailed):
		s.log.Warn("password change refused: wrong current password", "user", p.User, "client", r.RemoteAddr)
		return 0, nil, &statusError{code: http.StatusForbidden, field: "current_password", msg: "the current password is wrong"}
	case err != nil:
		return 0, nil, err
	}
	hash, err := checkedHash(req.Password)
	if err != nil {
		return 0, nil, err
	}
	if err := s.store.UserSetPassword(r.Context(), store.UserSetPasswordParams{Name: u.Name, Hash: hash, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("password changed", "user", u.Name, "by", p.Name, "client", r.RemoteAddr)
	res, err := s.newSession(r, u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}

func (s *Server) tokenList(r *http.Request) (int, any, error) {
	ts, err := s.store.TokenList(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, TokenFrom(t))
	}
	return http.StatusOK, out, nil
}

func (s *Server) tokenCreate(r *http.Request) (int, any, error) {
	var req TokenRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if !validName(req.Name) {
		return 0, nil, &badRequest{"name", fmt.Sprintf("token name %q: 1 to 64 letters, digits, '.', '_', '-' or '@'", req.Name)}
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return 0, nil, &badRequest{"role", err.Error()}
	}
	var exp *time.Time
	if req.Expires != "" {
		d, err := parseExpiry(req.Expires)
		if err != nil {
			return 0, nil, err
		}
		t := s.now().Add(d)
		exp = &t
	}
	secret, err := auth.NewSecret()
	if err != nil {
		return 0, nil, err
	}
	t, err := s.store.TokenCreate(r.Context(), store.TokenCreateParams{Name: req.Name, Kind: store.TokenAPI, Role: string(role),
		Hash: auth.HashSecret(secret), ExpiresAt: exp, Audit: s.audit(r)})
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("token created", "token", t.Name, "role", t.Role, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusCreated, TokenCreated{Token: TokenFrom(t), Secret: secret}, nil
}

func (s *Server) tokenRevoke(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := s.store.TokenRevoke(r.Context(), store.TokenRevokeParams{Name: name, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("token revoked", "token", name, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusOK, map[string]string{"revoked": name}, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return false
		}
	}
	return true
}

// statusError is an error answered with its own status.
type statusError struct {
	code       int
	field, msg string
	retryAfter string
}

func (e *statusError) Error() string { return e.msg }

// decodeBody reads a JSON body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	data, err := readBody(r, 1<<16)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &badRequest{"body", fmt.Sprintf("want a JSON object: %v", err)}
	}
	return nil
}

// parseExpiry reads a token's lifetime: a Go duration or a number of days ("30d").
func parseExpiry(v string) (time.Duration, error) {
	bad := &badRequest{"expires", fmt.Sprintf("expires %q: want a positive duration such as 720h or 30d", v)}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}
