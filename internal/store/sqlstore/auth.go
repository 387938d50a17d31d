package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// auditEvent appends, in tx, the event of an auth change naming who made it.
func (s *DB) auditEvent(ctx context.Context, tx *sql.Tx, typ, msg string, a store.Audit, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	data["by"], data["client"] = a.By, a.Client
	// Through eventsInsert, like every event: ids commit in order, for the notifier's cursor.
	if err := s.eventsInsert(ctx, tx, []store.EventAppendParams{{Type: typ, Now: a.Now, Node: a.Node, Message: msg + " by " + a.By,
		Data: data}}); err != nil {
		return fmt.Errorf("append event %s: %w", typ, err)
	}
	return nil
}

func (s *DB) exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, s.q(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// UserAdd implements store.Auth.
func (s *DB) UserAdd(ctx context.Context, p store.UserAddParams) (store.User, error) {
	u := store.User{Name: p.Name, Role: p.Role, Hash: p.Hash, CreatedAt: p.Audit.Now.UTC().Truncate(time.Microsecond)}
	u.UpdatedAt = u.CreatedAt
	err := s.tx(ctx, func(tx *sql.Tx) error {
		switch ok, err := s.exists(ctx, tx, `SELECT 1 FROM users WHERE name = ?`, p.Name); {
		case err != nil:
			return err
		case ok:
			return fmt.Errorf("user %s exists: %w", p.Name, store.ErrConflict)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			p.Name, p.Role, p.Hash, micros(u.CreatedAt), micros(u.CreatedAt)); err != nil {
			return err
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityUser, key: p.Name, op: store.OpApply,
			def: store.ChangeUser{Role: p.Role, Hash: p.Hash}}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "user.added", fmt.Sprintf("user %s (%s) added", p.Name, p.Role), p.Audit,
			map[string]any{"user": p.Name, "role": p.Role})
	})
	if err != nil {
		return u, fmt.Errorf("add user %s: %w", p.Name, err)
	}
	return u, nil
}

// UserGet implements store.Auth.
func (s *DB) UserGet(ctx context.Context, name string) (store.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	u := store.User{Name: name}
	var c, up int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT role, password_hash, created_at, updated_at FROM users WHERE name = ?`), name).
		Scan(&u.Role, &u.Hash, &c, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return u, notFound("user", name)
	}
	if err != nil {
		return u, fmt.Errorf("get user %s: %w", name, err)
	}
	u.CreatedAt, u.UpdatedAt = instant(c), instant(up)
	return u, nil
}

// UserList implements store.Auth.
func (s *DB) UserList(ctx context.Context) ([]store.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, created_at, updated_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		var u store.User
		var c, up int64
		if err := rows.Scan(&u.Name, &u.Role, &c, &up); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = instant(c), instant(up)
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserDelete implements store.Auth.
func (s *DB) UserDelete(ctx context.Context, p store.UserDeleteParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM users WHERE name = ?`, p.Name)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("user", p.Name)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE user_name = ?`, p.Name); err != nil {
			return err
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityUser, key: p.Name, op: store.OpDelete}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "user.deleted", fmt.Sprintf("user %s deleted", p.Name), p.Audit, map[string]any{"user": p.Name})
	})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", p.Name, err)
	}
	return nil
}

// UserSetPassword implements store.Auth.
func (s *DB) UserSetPassword(ctx context.Context, p store.UserSetPasswordParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`, p.Hash, micros(p.Audit.Now), p.Name)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("user", p.Name)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE user_name = ? AND kind = ?`, p.Name, store.TokenSession); err != nil {
			return err
		}
		var role string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT role FROM users WHERE name = ?`), p.Name).Scan(&role); err != nil {
			return err
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityUser, key: p.Name, op: store.OpApply,
			def: store.ChangeUser{Role: role, Hash: p.Hash}}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "user.password_changed", fmt.Sprintf("password of user %s changed", p.Name), p.Audit, map[string]any{"user": p.Name})
	})
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", p.Name, err)
	}
	return nil
}

// TokenCreate implements store.Auth.
func (s *DB) TokenCreate(ctx context.Context, p store.TokenCreateParams) (store.Token, error) {
	t := store.Token{Name: p.Name, Kind: p.Kind, Role: p.Role, User: p.User, Hash: p.Hash, CreatedBy: p.Audit.By,
		CreatedAt: p.Audit.Now.UTC().Truncate(time.Microsecond)}
	if p.ExpiresAt != nil {
		e := p.ExpiresAt.UTC().Truncate(time.Microsecond)
		t.ExpiresAt = &e
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		switch ok, err := s.exists(ctx, tx, `SELECT 1 FROM tokens WHERE name = ?`, p.Name); {
		case err != nil:
			return err
		case ok:
			return fmt.Errorf("token %s exists: %w", p.Name, store.ErrConflict)
		}
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO tokens (name, kind, role, user_name, hash, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), p.Name, p.Kind, p.Role, p.User, p.Hash, p.Audit.By,
			micros(t.CreatedAt), microsPtr(t.ExpiresAt)).Scan(&t.ID)
		if err != nil {
			return err
		}
		if p.Kind == store.TokenSession {
			// A login session is not configuration: it is neither logged nor synced.
			return s.auditEvent(ctx, tx, "user.login", fmt.Sprintf("user %s logged in", p.User), p.Audit, map[string]any{"user": p.User})
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityToken, key: p.Name, op: store.OpApply,
			def: store.ChangeToken{Role: p.Role, Hash: p.Hash, CreatedBy: p.Audit.By, ExpiresAt: t.ExpiresAt}}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "token.created", fmt.Sprintf("token %s (%s) created", p.Name, p.Role), p.Audit,
			map[string]any{"token": p.Name, "role": p.Role})
	})
	if err != nil {
		return t, fmt.Errorf("create token %s: %w", p.Name, err)
	}
	return t, nil
}

const tokenColumns = `id, name, kind, role, user_name, hash, created_by, created_at, expires_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var c int64
	var exp, used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Kind, &t.Role, &t.User, &t.Hash, &t.CreatedBy, &c, &exp, &used); err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = instant(c), instantPtr(exp), instantPtr(used)
	return t, nil
}

// TokenByHash implements store.Auth.
func (s *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, notFound("token", "with that secret")
	}
	if err != nil {
		return t, fmt.Errorf("find token: %w", err)
	}
	return t, nil
}

// TokenList implements store.Auth.
func (s *DB) TokenList(ctx context.Context) ([]store.Token, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE kind = ? ORDER BY id`), store.TokenAPI)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("scan token: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenRevoke implements store.Auth.
func (s *DB) TokenRevoke(ctx context.Context, p store.TokenRevokeParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE name = ? AND kind = ?`, p.Name, store.TokenAPI)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("token", p.Name)
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntityToken, key: p.Name, op: store.OpDelete}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "token.revoked", fmt.Sprintf("token %s revoked", p.Name), p.Audit, map[string]any{"token": p.Name})
	})
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", p.Name, err)
	}
	return nil
}

// SessionEnd implements store.Auth.
func (s *DB) SessionEnd(ctx context.Context, p store.SessionEndParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		by, key := `id = ? AND user_name = ?`, []any{p.ID, p.User}
		if p.Hash != "" {
			by, key = `hash = ?`, []any{p.Hash}
		}
		var user string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_name FROM tokens WHERE kind = ? AND `+by), append([]any{store.TokenSession}, key...)...).Scan(&user)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("session", "")
		}
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM tokens WHERE kind = ? AND `+by, append([]any{store.TokenSession}, key...)...); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "user.logout", fmt.Sprintf("user %s logged out", user), p.Audit, map[string]any{"user": user})
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// TokenTouch implements store.Auth.
func (s *DB) TokenTouch(ctx context.Context, id int64, now time.Time) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, micros(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("record use of token %d: %w", id, err)
	}
	return nil
}

// SettingInit implements store.Auth.
func (s *DB) SettingInit(ctx context.Context, key, value string, now time.Time) (string, error) {
	var v string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			key, value, micros(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE key = ?`), key).Scan(&v)
	})
	if err != nil {
		return "", fmt.Errorf("initialise setting %s: %w", key, err)
	}
	return v, nil
}
