// Package storepg opens tandem's PostgreSQL repository, the engine for clusters whose
// nodes live on several hosts. Behaviour is that of every engine (the shared SQL core in
// sqlstore, proven by the conformance suite); what is PostgreSQL's own is here: the
// database clock (clock_timestamp()) judges leases, rows read before a dependent write
// are locked, migrations run under goose's advisory session lock so two nodes starting at
// once apply them once, and LISTEN/NOTIFY pushes wake-ups between nodes.
package storepg

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Settings applied to every connection unless the URL sets them.
const (
	ConnectTimeoutDefault   = 5 * time.Second
	StatementTimeoutDefault = 10 * time.Second
	// IdleInTransactionTimeoutDefault ends the session of a node frozen mid-transaction.
	IdleInTransactionTimeoutDefault = time.Second
	MaxConnsDefault                 = 16
	// channelPrefix names the NOTIFY channels: tandem_runs, tandem_assigned, …
	channelPrefix = "tandem_"
)

// nowSQL is the database clock in microseconds since the epoch.
const nowSQL = `(extract(epoch from clock_timestamp()) * 1000000)::bigint`

// Store is the PostgreSQL repository.
type Store struct {
	*sqlstore.DB
	cfg *pgx.ConnConfig
	log *slog.Logger
}

// IsURL reports whether a --db value names a PostgreSQL database.
func IsURL(db string) bool { return store.IsPostgresURL(db) }

func init() {
	store.Register("postgres", func(ctx context.Context, url string, log *slog.Logger) (store.Store, error) {
		return Open(ctx, url, log)
	})
}

// Open connects to the database at url, brings its schema up to date, and returns the
// store. log receives the listener's connection changes (nil: discarded).
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeoutDefault
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(StatementTimeoutDefault.Milliseconds())
	}
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		// A frozen node (SIGSTOP, VM pause) inside a transaction must not hold its row
		// locks, the lease row's among them, for longer than a takeover may take.
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(IdleInTransactionTimeoutDefault.Milliseconds())
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "tandem"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(MaxConnsDefault)
	db.SetMaxIdleConns(MaxConnsDefault)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", redact(cfg), err)
	}
	if err := migrate(pctx, db); err != nil {
		db.Close()
		return nil, err
	}
	d := sqlstore.Dialect{Name: "postgres", Numbered: true, ForShare: " FOR SHARE", ForKeyShare: " FOR KEY SHARE", ForUpdate: " FOR UPDATE",
		NowSQL: nowSQL, Notify: notify, ArrayParams: true,
		// Sequence values are taken in one order and committed in another; events are
		// inserted under this lock, held to commit, so their ids commit in order and the
		// notifier's cursor skips none (store.Store.EventAppend).
		EventLock: `SELECT pg_advisory_xact_lock(7476150)`}
	return &Store{DB: sqlstore.New(db, d), cfg: cfg, log: log}, nil
}

// redact names the server without credentials, for error messages and logs.
func redact(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

func migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	// Nodes starting together wait for the first one's migration: retried every second
	// (goose's shortest period; its default is 5s) for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("prepare migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if len(res) > 0 {
		// A fresh or changed schema has no statistics until autovacuum's first analyze,
		// and the planner guesses meanwhile. The batched statements' plans do not depend
		// on statistics (TestConformance/RunBatchPlans), but the reads' do.
		if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
			return fmt.Errorf("analyze after migrating: %w", err)
		}
	}
	return nil
}

func notify(ctx context.Context, tx *sql.Tx, topic, payload string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channelPrefix+topic, payload)
	return err
}

// What the engine implements beyond store.Store (checked by the compiler).
var (
	_ store.Store    = (*Store)(nil)
	_ store.Liveness = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
	_ store.Analyzer = (*Store)(nil)
)
