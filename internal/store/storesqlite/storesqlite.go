// Package storesqlite opens tandem's embedded repository: one SQLite file (WAL) that any
// number of tandem processes on one host may share. Every writing transaction starts with
// BEGIN IMMEDIATE, so concurrent writers queue on the write lock instead of failing with
// "database is locked" half-way through; migrations run under an OS file lock so two
// processes starting at once cannot both apply them.
package storesqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// BusyTimeoutDefault is how long a statement waits for another writer's lock.
const BusyTimeoutDefault = 10 * time.Second

// nowSQL is SQLite's clock (the host's, read by the SQLite library, not through a
// node's injectable clock) in microseconds since the epoch.
const nowSQL = `CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)`

// Store is the SQLite repository.
type Store struct {
	*sqlstore.DB
	path string
}

// Path turns a --db value ("sqlite:///abs/path", "sqlite://rel/path", "file:x" or a plain
// path) into a file path.
func Path(db string) string {
	switch {
	case strings.HasPrefix(db, "sqlite://"):
		return strings.TrimPrefix(db, "sqlite://")
	case strings.HasPrefix(db, "file:"):
		return strings.TrimPrefix(db, "file:")
	}
	return db
}

func init() {
	store.Register("sqlite", func(ctx context.Context, db string, _ *slog.Logger) (store.Store, error) {
		return Open(ctx, Path(db))
	})
}

// Open opens (creating if needed) the database file at path and brings its schema up to
// date.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Owner only: SQLite gives its -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutDefault.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	conn, err := newConnector("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := migrate(ctx, db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{DB: sqlstore.New(db, sqlstore.Dialect{Name: "sqlite", NowSQL: nowSQL, OneWriter: true}), path: path}, nil
}

// migrate applies pending migrations while holding an exclusive lock on path+".lock".
func migrate(ctx context.Context, db *sql.DB, path string) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open migration lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", path, err)
	}
	return nil
}

// What the engine implements beyond store.Store (checked by the compiler).
var (
	_ store.Store    = (*Store)(nil)
	_ store.Liveness = (*Store)(nil)
)
