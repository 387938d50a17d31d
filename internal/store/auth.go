package store

import (
	"context"
	"time"
)

// Auth is the repository's concern of who may use the API: users (a password hash and
// a role) and tokens (API tokens and login sessions, each stored as the SHA-256 of its
// secret, never the secret). Every change writes its event, naming who made it, in its
// own transaction.
type Auth interface {
	// UserAdd records a user; ErrConflict when the name is taken.
	UserAdd(ctx context.Context, p UserAddParams) (User, error)
	UserGet(ctx context.Context, name string) (User, error)
	UserList(ctx context.Context) ([]User, error)
	// UserDelete removes a user and every token of theirs; ErrNotFound when none.
	UserDelete(ctx context.Context, p UserDeleteParams) error
	// UserSetPassword replaces a user's password hash and ends their login sessions.
	UserSetPassword(ctx context.Context, p UserSetPasswordParams) error

	// TokenCreate records a token by its hash; ErrConflict when the name is taken.
	TokenCreate(ctx context.Context, p TokenCreateParams) (Token, error)
	// TokenByHash finds the token whose secret hashes to hash (expired ones included:
	// the caller judges expiry); ErrNotFound when none.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// TokenList lists the API tokens (not login sessions), by id.
	TokenList(ctx context.Context) ([]Token, error)
	// TokenRevoke deletes the API token named; ErrNotFound when none.
	TokenRevoke(ctx context.Context, p TokenRevokeParams) error
	// SessionEnd deletes one login session (a logout), with a user.logout event: the
	// session whose secret hashes to p.Hash, or else session p.ID of user p.User;
	// ErrNotFound when there is none (API tokens are revoked by name).
	SessionEnd(ctx context.Context, p SessionEndParams) error
	// TokenTouch records that a token was used at p.Now.
	TokenTouch(ctx context.Context, id int64, now time.Time) error

	// SettingInit stores value under key unless the key holds one already, and returns
	// the value stored: the first of several nodes to call it decides.
	SettingInit(ctx context.Context, key, value string, now time.Time) (string, error)
}

// User is someone who logs in with a password.
type User struct {
	Name string
	Role string
	// Hash is the password's argon2id hash as a PHC string.
	Hash      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Token kinds.
const (
	TokenAPI     = "api"     // made by token create: shown once, listed, revoked by name
	TokenSession = "session" // made by login: a user's, ends with its expiry or the user
)

// Token is an API token or a login session.
type Token struct {
	ID   int64
	Name string
	Kind string
	Role string
	// User owns a session ("" for an API token).
	User       string
	Hash       string // hex SHA-256 of the secret
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

// Audit says who made a change and from where: the principal ("user alice", "token
// ci") and the client's address. It goes into the change's event.
type Audit struct {
	By     string
	Client string
	Node   string
	Now    time.Time
}

// UserAddParams are the arguments of UserAdd.
type UserAddParams struct {
	Name, Role, Hash string
	Audit            Audit
}

// UserDeleteParams are the arguments of UserDelete.
type UserDeleteParams struct {
	Name  string
	Audit Audit
}

// UserSetPasswordParams are the arguments of UserSetPassword.
type UserSetPasswordParams struct {
	Name, Hash string
	Audit      Audit
}

// TokenCreateParams are the arguments of TokenCreate.
type TokenCreateParams struct {
	Name, Kind, Role, User, Hash string
	ExpiresAt                    *time.Time
	Audit                        Audit
}

// TokenRevokeParams are the arguments of TokenRevoke.
type TokenRevokeParams struct {
	Name  string
	Audit Audit
}

// SessionEndParams name the session SessionEnd ends: by the hash of its secret, or
// else by its id and user.
type SessionEndParams struct {
	Hash  string
	ID    int64
	User  string
	Audit Audit
}
