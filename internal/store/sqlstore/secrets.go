package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// SecretSet implements store.Secrets.
func (s *DB) SecretSet(ctx context.Context, p store.SecretSetParams) (int, error) {
	var version int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = s.secretPut(ctx, tx, p.Name, p.Ciphertext, p.Audit.Now); err != nil {
			return err
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntitySecret, key: p.Name, op: store.OpApply,
			def: store.ChangeSecret{Version: version, Ciphertext: p.Ciphertext}}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "secret.set", fmt.Sprintf("secret %s set (version %d)", p.Name, version), p.Audit,
			map[string]any{"secret": p.Name, "version": version})
	})
	if err != nil {
		return 0, fmt.Errorf("set secret %s: %w", p.Name, err)
	}
	return version, nil
}

// secretPut stores a secret's new version in tx and returns its number: 1 for a new
// secret, one above the last otherwise.
func (s *DB) secretPut(ctx context.Context, tx *sql.Tx, name string, ciphertext []byte, now time.Time) (int, error) {
	var version int
	ct := base64.StdEncoding.EncodeToString(ciphertext)
	err := tx.QueryRowContext(ctx, s.q(`SELECT version FROM secrets WHERE name = ?`+s.d.ForUpdate), name).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		version = 1
		_, err = s.exec(ctx, tx, `INSERT INTO secrets (name, version, ciphertext, created_at, updated_at) VALUES (?, 1, ?, ?, ?)`,
			name, ct, micros(now), micros(now))
	case err == nil:
		version++
		_, err = s.exec(ctx, tx, `UPDATE secrets SET version = ?, ciphertext = ?, updated_at = ? WHERE name = ?`, version, ct, micros(now), name)
	}
	return version, err
}

// SecretGet implements store.Secrets.
func (s *DB) SecretGet(ctx context.Context, name string) (store.Secret, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	sec := store.Secret{Name: name}
	var ct string
	var c, u int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT version, ciphertext, created_at, updated_at FROM secrets WHERE name = ?`), name).
		Scan(&sec.Version, &ct, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return sec, notFound("secret", name)
	}
	if err != nil {
		return sec, fmt.Errorf("get secret %s: %w", name, err)
	}
	if sec.Ciphertext, err = base64.StdEncoding.DecodeString(ct); err != nil {
		return sec, fmt.Errorf("get secret %s: %w", name, err)
	}
	sec.CreatedAt, sec.UpdatedAt = instant(c), instant(u)
	return sec, nil
}

// SecretList implements store.Secrets.
func (s *DB) SecretList(ctx context.Context) ([]store.Secret, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT name, version, created_at, updated_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	var out []store.Secret
	for rows.Next() {
		var sec store.Secret
		var c, u int64
		if err := rows.Scan(&sec.Name, &sec.Version, &c, &u); err != nil {
			return nil, fmt.Errorf("scan secret: %w", err)
		}
		sec.CreatedAt, sec.UpdatedAt = instant(c), instant(u)
		out = append(out, sec)
	}
	return out, rows.Err()
}

// SecretDelete implements store.Secrets.
func (s *DB) SecretDelete(ctx context.Context, p store.SecretDeleteParams) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM secrets WHERE name = ?`, p.Name)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("secret", p.Name)
		}
		if err := s.changesAppend(ctx, tx, []changeNew{{entity: store.EntitySecret, key: p.Name, op: store.OpDelete}}); err != nil {
			return err
		}
		return s.auditEvent(ctx, tx, "secret.deleted", fmt.Sprintf("secret %s deleted", p.Name), p.Audit, map[string]any{"secret": p.Name})
	})
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", p.Name, err)
	}
	return nil
}
