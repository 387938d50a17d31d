package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Principal is who made a request.
type Principal struct {
	// Name says who: "user alice", "token ci", "node b", "anonymous".
	Name string
	Role Role
	// User is the user a login session belongs to ("" otherwise).
	User string
	// TokenID is the stored token or session the request carried (0: none).
	TokenID int64
}

// Anonymous is a request without credentials.
var Anonymous = Principal{Name: "anonymous"}

// PeerVerifier checks that a request was signed with the cluster secret and returns the
// node that signed it.
type PeerVerifier interface {
	Verify(r *http.Request) (string, error)
}

// Params configure an Authenticator.
type Params struct {
	Store store.Auth
	Log   *slog.Logger
	Now   func() time.Time
	// Peers verifies node-to-node requests (nil: none are accepted).
	Peers PeerVerifier
	// NoAuth gives every request the admin role (--insecure-no-auth, loopback only).
	NoAuth bool
}

// Authenticator turns a request's credentials into a Principal. Safe for concurrent use.
type Authenticator struct {
	p       Params
	limiter *Limiter
	mu      sync.Mutex
	touched map[int64]time.Time // when each token's last use was last recorded
}

// touchEvery bounds how often a token's last-used time is written: a busy client must
// not turn every read into a repository write.
const touchEvery = time.Minute

// New returns an authenticator.
func New(p Params) *Authenticator {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{p: p, limiter: NewLimiter(LoginFailuresMax, LoginWindow), touched: map[int64]time.Time{}}
}

// NoAuth reports whether authentication is switched off.
func (a *Authenticator) NoAuth() bool { return a.p.NoAuth }

// Limiter is the failed-login limiter.
func (a *Authenticator) Limiter() *Limiter { return a.limiter }

// Errors of Authenticate: a request's credentials are missing or wrong (answered 401).
var (
	ErrNoCredentials = errors.New("no credentials")
	ErrBadToken      = errors.New("the token is unknown, revoked or expired")
)

// Authenticate finds who sent r: a node (signed with the cluster secret), a token
// (Authorization: Bearer), or nobody (Anonymous with ErrNoCredentials).
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a.p.Peers != nil && IsPeerRequest(r) {
		node, err := a.p.Peers.Verify(r)
		if err != nil {
			return Anonymous, fmt.Errorf("node-to-node request refused: %w", err)
		}
		return Principal{Name: "node " + node, Role: Peer}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if a.p.NoAuth {
			return Principal{Name: "anonymous (auth off)", Role: Admin}, nil
		}
		return Anonymous, ErrNoCredentials
	}
	scheme, secret, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(secret, TokenPrefix) {
		return Anonymous, fmt.Errorf("want Authorization: Bearer tdm_…: %w", ErrBadToken)
	}
	t, err := a.p.Store.TokenByHash(r.Context(), HashSecret(strings.TrimSpace(secret)))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Anonymous, ErrBadToken
	case err != nil:
		return Anonymous, err
	}
	now := a.p.Now()
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return Anonymous, ErrBadToken
	}
	a.touch(r.Context(), t.ID, now)
	if t.Kind == store.TokenSession {
		return Principal{Name: "user " + t.User, Role: Role(t.Role), User: t.User, TokenID: t.ID}, nil
	}
	return Principal{Name: "token " + t.Name, Role: Role(t.Role), TokenID: t.ID}, nil
}

func (a *Authenticator) touch(ctx context.Context, id int64, now time.Time) {
	a.mu.Lock()
	last, ok := a.touched[id]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		a.touched[id] = now
	}
	a.mu.Unlock()
	if due {
		if err := a.p.Store.TokenTouch(context.WithoutCancel(ctx), id, now); err != nil {
			a.p.Log.Warn("cannot record a token's use", "token_id", id, "err", err)
		}
	}
}

// Login checks a user's password, limited per user and client address; it returns
// the user, or ErrLoginFailed, or a *LimitError while the limit holds.
func (a *Authenticator) Login(ctx context.Context, name, password, client string) (store.User, error) {
	host, _, err := net.SplitHostPort(client)
	if err != nil {
		host = client
	}
	key := name + "\x00" + host
	now := a.p.Now()
	if wait := a.limiter.Wait(key, now); wait > 0 {
		return store.User{}, &LimitError{RetryAfter: wait}
	}
	u, err := a.p.Store.UserGet(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	ok := false
	if err == nil {
		ok, _ = CheckPassword(u.Hash, password)
	} else {
		_, _ = CheckPassword(dummyHash, password) // the same time whether the user exists or not
	}
	if !ok {
		a.limiter.Fail(key, now)
		return store.User{}, ErrLoginFailed
	}
	a.limiter.Reset(key)
	return u, nil
}

// ErrLoginFailed is a wrong user name or password (which, is not said).
var ErrLoginFailed = errors.New("wrong user name or password")

// dummyHash is checked against when the user does not exist.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$xnzHuOx+FQtGzjr6DL0/H0gPwpNi2X+gGlBsqcwWbc8"
