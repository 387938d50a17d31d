package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// An Opener opens a repository of one engine at url and brings its schema up to date.
// log receives the engine's own messages (nil: discarded).
type Opener func(ctx context.Context, url string, log *slog.Logger) (Store, error)

var engines struct {
	sync.Mutex
	byName map[string]Opener
}

// Register makes an engine available to Open; the engine's package calls it from init
// (import it, blank if need be, to link it in). name is "postgres" or "sqlite".
func Register(name string, open Opener) {
	engines.Lock()
	defer engines.Unlock()
	if engines.byName == nil {
		engines.byName = map[string]Opener{}
	}
	engines.byName[name] = open
}

// IsPostgresURL reports whether a repository value names a PostgreSQL database
// (postgres:// or postgresql://); everything else is a SQLite file.
func IsPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Engine names the engine of a repository value: "postgres" or "sqlite".
func Engine(db string) string {
	if IsPostgresURL(db) {
		return "postgres"
	}
	return "sqlite"
}

// Open opens the repository db: a postgres:// URL, or a SQLite path (plain, file: or
// sqlite://). It is the one place that tells the engines apart.
func Open(ctx context.Context, db string, log *slog.Logger) (Store, error) {
	name := Engine(db)
	engines.Lock()
	open := engines.byName[name]
	engines.Unlock()
	if open == nil {
		return nil, fmt.Errorf("open repository: the %s engine is not linked into this program", name)
	}
	return open(ctx, db, log)
}
