// Package store persists sessions and their messages, in SQLite or
// PostgreSQL. State lives here and
// never in a configuration snapshot, so a reload loses nothing.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/pg"
	_ "modernc.org/sqlite" // pure-Go driver: the binary builds with CGO_ENABLED=0
)

//go:embed migrations
var migrations embed.FS

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// Store is a database handle. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	url string
	// writeMu queues this process's write transactions in Go. SQLite admits
	// one writer at a time; left to its busy handler, waiting writers sleep
	// in growing steps (up to 100 ms) and the tail latency explodes under
	// concurrency. busy_timeout still covers writers in other processes.
	writeMu sync.Mutex
	pg      bool // PostgreSQL; else SQLite
	watch   watchers
	log     *slog.Logger // never nil
	hashKey []byte       // keys PublicHash; read once at Open
	tracing *observe.Tracing
}

// Option adjusts a Store at Open.
type Option func(*Store)

// WithLog sends the store's own warnings (a lost PostgreSQL listener) to
// l; by default they are discarded.
func WithLog(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open connects to url — sqlite://PATH (the file and its directory are
// created when absent) or postgres://… — and applies pending migrations.
// On error nothing stays open.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	s, err := openURL(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if err := s.loadHashKey(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("database %s: %w", config.RedactURL(rawURL), err)
	}
	s.log = slog.New(slog.DiscardHandler)
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func openURL(ctx context.Context, rawURL string) (*Store, error) {
	return openURLUpTo(ctx, rawURL, math.MaxInt)
}

// openURLUpTo is openURL applying the migrations up to last only.
func openURLUpTo(ctx context.Context, rawURL string, last int) (*Store, error) {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		// database/sql keeps only 2 idle connections by default; workers,
		// requests and heartbeats would reconnect all the time.
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s := &Store{db: db, url: rawURL, pg: true}
		if err := s.migrateUpTo(ctx, last); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	path, ok := strings.CutPrefix(rawURL, "sqlite://")
	if !ok || path == "" {
		return nil, fmt.Errorf("database %q: want sqlite://PATH or postgres://USER@HOST:PORT/DB", config.RedactURL(rawURL))
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("database: create %s: %w", dir, err)
		}
	}
	// Conversations are private: create the file owner-only before SQLite does.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // writers queue on busy_timeout instead of failing on upgrade
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("database: open %s: %w", path, err)
	}
	s := &Store{db: db, url: rawURL}
	if err := s.migrateUpTo(ctx, last); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Postgres reports whether the store is on PostgreSQL (else SQLite).
func (s *Store) Postgres() bool { return s.pg }

// q rewrites the ? placeholders of a query for the store's database.
func (s *Store) q(query string) string {
	if s.pg {
		return pg.Rebind(query)
	}
	return query
}

// lockWrite queues this process's writers on SQLite (see writeMu); on
// PostgreSQL writers run concurrently and it does nothing.
func (s *Store) lockWrite() func() {
	if s.pg {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// URL returns the URL the store was opened with.
func (s *Store) URL() string { return s.url }

// Close closes the database. Calls in flight finish first.
func (s *Store) Close() error {
	s.stopWatching()
	return s.db.Close()
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrateUpTo applies, in order and each in its own transaction, every embedded
// migration not yet recorded in schema_migrations.
// It stops after migration last (tests upgrade databases made by older
// versions that way).
func (s *Store) migrateUpTo(ctx context.Context, last int) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %w", config.RedactURL(s.url), err)
	}
	defer conn.Close()
	if s.pg { // instances starting together migrate one at a time
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(4242011)`); err != nil {
			return fmt.Errorf("database %s: %w", config.RedactURL(s.url), err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(4242011)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("database %s: migrations table: %w", config.RedactURL(s.url), err)
	}
	dir := "sqlite"
	if s.pg {
		dir = "postgres"
	}
	files, err := fs.Glob(migrations, "migrations/"+dir+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		version, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", f)
		}
		if version > last {
			break
		}
		if err := s.applyMigration(ctx, conn, f, version); err != nil {
			return fmt.Errorf("database: migration %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, file string, version int) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(file)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, now()); err != nil {
		return err
	}
	return tx.Commit()
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
