package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// authorize adds the client's token to req.
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

func (c *Client) postJSON(ctx context.Context, path string, body any, idempotent bool, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: "POST", path: path, body: b, ctype: "application/json", idempotent: idempotent}, out)
}

// WhoAmI says who the client's token belongs to and its role.
func (c *Client) WhoAmI(ctx context.Context) (wire.WhoAmI, error) {
	var out wire.WhoAmI
	return out, c.call(ctx, get("/api/v1/whoami"), &out)
}

// Login checks a user's password and returns a session token.
func (c *Client) Login(ctx context.Context, user, password string) (wire.LoginResult, error) {
	var out wire.LoginResult
	return out, c.postJSON(ctx, "/api/v1/login", wire.LoginRequest{User: user, Password: password}, false, &out)
}

// UserList lists the users.
func (c *Client) UserList(ctx context.Context) ([]wire.User, error) {
	var out []wire.User
	return out, c.call(ctx, get("/api/v1/users"), &out)
}

// UserAdd adds a user.
func (c *Client) UserAdd(ctx context.Context, name, role, password string) (wire.User, error) {
	var out wire.User
	return out, c.postJSON(ctx, "/api/v1/users", wire.UserRequest{Name: name, Role: role, Password: password}, false, &out)
}

// UserDelete deletes a user and their sessions.
func (c *Client) UserDelete(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/api/v1/users/" + url.PathEscape(name), idempotent: true}, nil)
}

// UserPassword replaces a user's password (their sessions end).
func (c *Client) UserPassword(ctx context.Context, name, password string) error {
	return c.postJSON(ctx, "/api/v1/users/"+url.PathEscape(name)+"/password", wire.PasswordRequest{Password: password}, true, nil)
}

// TokenList lists the API tokens (never their secrets).
func (c *Client) TokenList(ctx context.Context) ([]wire.Token, error) {
	var out []wire.Token
	return out, c.call(ctx, get("/api/v1/tokens"), &out)
}

// TokenCreate makes an API token; its secret is in the answer, and only there.
func (c *Client) TokenCreate(ctx context.Context, name, role, expires string) (wire.TokenCreated, error) {
	var out wire.TokenCreated
	return out, c.postJSON(ctx, "/api/v1/tokens", wire.TokenRequest{Name: name, Role: role, Expires: expires}, false, &out)
}

// TokenRevoke revokes an API token.
func (c *Client) TokenRevoke(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/api/v1/tokens/" + url.PathEscape(name), idempotent: true}, nil)
}

// SecretList lists the secrets' names and versions (never their values).
func (c *Client) SecretList(ctx context.Context) ([]wire.Secret, error) {
	var out []wire.Secret
	return out, c.call(ctx, get("/api/v1/secrets"), &out)
}

// SecretSet stores a new version of a secret; the value travels only in the body.
func (c *Client) SecretSet(ctx context.Context, name string, value []byte) error {
	return c.call(ctx, request{method: "PUT", path: "/api/v1/secrets/" + url.PathEscape(name), body: value,
		ctype: "application/octet-stream", idempotent: true}, nil)
}

// SecretDelete deletes a secret.
func (c *Client) SecretDelete(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/api/v1/secrets/" + url.PathEscape(name), idempotent: true}, nil)
}
