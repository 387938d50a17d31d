package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/auth"
)

// Cookies the console sets. The session cookie holds the bearer secret of a login
// session (or of a token the user logged in with): HttpOnly, SameSite=Strict, Secure
// under TLS.
const (
	SessionCookie = "tandem_session"
	loginCookie   = "tandem_login" // the login form's CSRF token (double submit)
	csrfField     = "csrf"
)

// session is a request's authenticated browser session.
type session struct {
	p      auth.Principal
	secret string
	csrf   string
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// csrfToken is the CSRF token of a session: derived from its secret, which a page of
// another site cannot read (the cookie is HttpOnly), and the same on every node, so a
// form rendered by one node may be posted to another.
func csrfToken(secret string) string {
	h := sha256.Sum256([]byte("tandem console csrf\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// route registers h for "METHOD PATTERN" guarded by role: a page without a session
// goes to the login page; a weaker role is refused 403; a POST needs the session's CSRF
// token and, for an operator or admin route, a node that is not read-only.
func (c *Console) route(mux *http.ServeMux, pattern string, role auth.Role, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	c.routes = append(c.routes, Route{Method: method, Pattern: path, Role: role})
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "same-origin")
		if role == auth.Public {
			h(w, r)
			return
		}
		s, err := c.authenticate(r)
		if err != nil {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/stream/") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, http.StatusUnauthorized, "not logged in (or the session ended): log in again")
			return
		}
		if !s.p.Role.Allows(role) {
			c.fail(w, r, http.StatusForbidden, fmt.Sprintf("%s (role %s) may not %s %s: it needs the %s role", s.p.Name, s.p.Role, method, r.URL.Path, role))
			return
		}
		if r.Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue(csrfField)), []byte(s.csrf)) != 1 {
				c.fail(w, r, http.StatusForbidden, "the form's CSRF token is missing or wrong: reload the page and try again")
				return
			}
			if c.p.ReadOnly && role != auth.Any {
				c.fail(w, r, http.StatusForbidden, fmt.Sprintf("the console of node %s is read-only (console.read_only): it takes no actions; use another node or the CLI", c.p.NodeID))
				return
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, s)
		h(w, r.WithContext(api.WithPrincipal(ctx, s.p)))
	})
}

// errNoSession: the request carries no session cookie.
var errNoSession = errors.New("no session")

// authenticate reads the session cookie and asks the authenticator who it is.
func (c *Console) authenticate(r *http.Request) (*session, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	if c.p.Auth == nil {
		return nil, errNoSession
	}
	probe := r.Clone(r.Context())
	probe.Header = http.Header{"Authorization": {"Bearer " + ck.Value}}
	p, err := c.p.Auth.Authenticate(probe)
	if err != nil {
		return nil, err
	}
	if p.Role == auth.Peer || p.Role == auth.Sync {
		return nil, fmt.Errorf("role %s cannot use the console", p.Role)
	}
	return &session{p: p, secret: ck.Value, csrf: csrfToken(ck.Value)}, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge.Seconds())})
}

type loginData struct {
	pageData
	User, Next, Error, Field string
}

// loginPage shows the login form: a user's name and password, or an API token (the
// bootstrap admin token on a first start).
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, d loginData) {
	tok := randomToken()
	c.setCookie(w, r, loginCookie, tok, time.Hour)
	d.pageData = c.basePage(r, "Log in")
	d.CSRF = tok
	c.render(w, code, "login", d)
}

// loginSubmit logs in through the API (its rate limit, its audit event) and keeps the
// session's token in the session cookie.
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(loginCookie)
	d := loginData{User: r.PostFormValue("user"), Next: safeNext(r.PostFormValue("next"))}
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		d.Error, d.Field = "the login form expired: try again", "form"
		c.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	var secret string
	ttl := api.SessionTTL
	if tok := strings.TrimSpace(r.PostFormValue("token")); tok != "" {
		probe := r.Clone(r.Context())
		probe.Header = http.Header{"Authorization": {"Bearer " + tok}}
		if _, err := c.p.Auth.Authenticate(probe); err != nil {
			d.Error, d.Field = "that token is unknown, revoked or expired", "token"
			c.renderLogin(w, r, http.StatusUnauthorized, d)
			return
		}
		secret = tok
	} else {
		var res api.LoginResult
		body := jsonBody(api.LoginRequest{User: d.User, Password: r.PostFormValue("password")})
		if err := c.call(r, http.MethodPost, "/api/v1/login", body, &res); err != nil {
			d.Error, d.Field = errText(err), errField(err, "password")
			c.renderLogin(w, r, statusOf(err), d)
			return
		}
		secret, ttl = res.Token, time.Until(res.ExpiresAt)
	}
	c.setCookie(w, r, loginCookie, "", -time.Second)
	c.setCookie(w, r, SessionCookie, secret, ttl)
	http.Redirect(w, r, cmpOr(d.Next, "/"), http.StatusSeeOther)
}

// logout ends the session: a login session is revoked, a token is only forgotten by
// this browser.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	if s.p.User != "" && c.p.Revoke != nil {
		if err := c.p.Revoke(context.WithoutCancel(r.Context()), auth.HashSecret(s.secret), s.p.Name, r.RemoteAddr); err != nil {
			c.p.Log.Warn("cannot revoke a console session on logout", "user", s.p.User, "err", err)
		}
	}
	c.setCookie(w, r, SessionCookie, "", -time.Second)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site: a path, never another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	return next
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
