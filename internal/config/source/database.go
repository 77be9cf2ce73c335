package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/pg"
)

// Database keeps named configuration documents in a table,
// config_documents, with every write also recorded in
// config_document_history. Each write bumps the document's version and is
// conditional on the version it was based on, so two writers never
// overwrite each other blindly (the loser gets *ConflictError).
//
// A document edited with plain SQL instead (psql, the sqlite3 shell) is
// versioned by a trigger: on PostgreSQL it is hashed, numbered, attributed
// to sql:ROLE and recorded in the history as Put would; on SQLite it is
// numbered and recorded, and its hash filled in by the next read.
//
// On PostgreSQL a trigger announces every change with NOTIFY on channel
// hector_config; Watch LISTENs, so changes arrive without polling, and
// after a reconnect it reads the document again. SQLite has no
// notifications; Watch polls the version at PollInterval.
type Database struct {
	URL      string // postgres://... or sqlite://PATH
	Document string // the document's name
	// PollInterval is how often SQLite is polled; default 1s.
	PollInterval time.Duration
	// Timeout bounds one read or write; default 3s.
	Timeout time.Duration
	// Actor is recorded in the history for writes made through Write.
	Actor string
	// MaxBytes is the largest document read; 0 means DefaultMaxBytes.
	MaxBytes int64

	mu      sync.Mutex
	db      *sql.DB
	version int64 // of the last successful read
}

// ConflictError is a write based on a version that is no longer current.
type ConflictError struct {
	Name              string
	Expected, Current int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("config document %q is at version %d, not %d: it changed since it was read", e.Name, e.Current, e.Expected)
}

// Name implements Source.
func (d *Database) Name() string { return "database:" + d.Document }

func (d *Database) postgres() bool {
	return strings.HasPrefix(d.URL, "postgres://") || strings.HasPrefix(d.URL, "postgresql://")
}

func (d *Database) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return 3 * time.Second
}

// q rewrites ? placeholders for PostgreSQL.
func (d *Database) q(query string) string {
	if d.postgres() {
		return pg.Rebind(query)
	}
	return query
}

const pgSchema = `
CREATE TABLE IF NOT EXISTS config_documents (
	name       TEXT PRIMARY KEY,
	content    TEXT NOT NULL,
	hash       TEXT NOT NULL,
	version    BIGINT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	updated_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS config_document_history (
	name       TEXT NOT NULL,
	version    BIGINT NOT NULL,
	content    TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	actor      TEXT NOT NULL DEFAULT '',
	deleted    BOOLEAN NOT NULL DEFAULT false,
	PRIMARY KEY (name, version)
);
CREATE OR REPLACE FUNCTION hector_config_notify() RETURNS trigger AS $$
BEGIN
	PERFORM pg_notify('hector_config', COALESCE(NEW.name, OLD.name));
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER hector_config_notify AFTER INSERT OR UPDATE OR DELETE ON config_documents
	FOR EACH ROW EXECUTE FUNCTION hector_config_notify();
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
			AND table_name = 'config_documents' AND column_name = 'version' AND column_default IS NOT NULL) THEN
		ALTER TABLE config_documents ALTER COLUMN hash SET DEFAULT '', ALTER COLUMN version SET DEFAULT 0;
	END IF;
END $$;
-- Writes that do not keep the books themselves (an UPDATE or INSERT from
-- psql) are versioned here: hashed, numbered after the highest version the
-- history holds, attributed to sql:ROLE, and recorded in the history, as
-- Put does. A write that carries its own new version and the content's
-- hash (Put, in this and earlier releases) is left alone.
CREATE OR REPLACE FUNCTION hector_config_version() RETURNS trigger AS $$
DECLARE
	computed TEXT := encode(sha256(convert_to(NEW.content, 'UTF8')), 'hex');
	last BIGINT;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.content IS NOT DISTINCT FROM OLD.content THEN
		NEW.hash := computed;
		RETURN NEW;
	END IF;
	IF NEW.hash = computed AND NEW.version > (CASE WHEN TG_OP = 'UPDATE' THEN OLD.version ELSE 0 END) THEN
		RETURN NEW;
	END IF;
	SELECT MAX(version) INTO last FROM config_document_history WHERE name = NEW.name;
	NEW.version := GREATEST(COALESCE(last, 0), CASE WHEN TG_OP = 'UPDATE' THEN OLD.version ELSE 0 END) + 1;
	NEW.hash := computed;
	NEW.updated_at := now();
	IF TG_OP = 'INSERT' OR NEW.updated_by IS NOT DISTINCT FROM OLD.updated_by THEN
		NEW.updated_by := 'sql:' || session_user;
	END IF;
	INSERT INTO config_document_history (name, version, content, hash, actor)
		VALUES (NEW.name, NEW.version, NEW.content, NEW.hash, NEW.updated_by);
	RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER hector_config_version BEFORE INSERT OR UPDATE ON config_documents
	FOR EACH ROW EXECUTE FUNCTION hector_config_version();
`

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS config_documents (
	name       TEXT PRIMARY KEY,
	content    TEXT NOT NULL,
	hash       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
	updated_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS config_document_history (
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	content    TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
	actor      TEXT NOT NULL DEFAULT '',
	deleted    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (name, version)
);
-- An UPDATE of the content that does not bump the version (one from the
-- sqlite3 shell) is versioned here, like Put; SQLite cannot hash, so the
-- hash is left empty and filled in by the next read (see fillHash).
CREATE TRIGGER IF NOT EXISTS hector_config_version AFTER UPDATE OF content ON config_documents
	WHEN NEW.content IS NOT OLD.content AND NEW.version = OLD.version
BEGIN
	UPDATE config_documents SET
		version = max(OLD.version, (SELECT COALESCE(MAX(version), 0) FROM config_document_history WHERE name = NEW.name)) + 1,
		hash = '', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now'),
		updated_by = CASE WHEN NEW.updated_by IS OLD.updated_by THEN 'sql' ELSE NEW.updated_by END
	WHERE name = NEW.name;
	INSERT INTO config_document_history (name, version, content, hash, actor)
		SELECT name, version, content, '', updated_by FROM config_documents WHERE name = NEW.name;
END;
`

// open connects and creates the tables (idempotent; on PostgreSQL under an
// advisory lock, so instances starting together do not collide).
func (d *Database) open(ctx context.Context) (*sql.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db != nil {
		return d.db, nil
	}
	var db *sql.DB
	var err error
	if d.postgres() {
		db, err = sql.Open("pgx", d.URL)
	} else {
		path, ok := strings.CutPrefix(d.URL, "sqlite://")
		if !ok || path == "" {
			return nil, fmt.Errorf("config database %q: want postgres://... or sqlite://PATH", d.URL)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("config database: %w", err)
			}
		}
		v := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)"} {
			v.Add("_pragma", p)
		}
		v.Set("_txlock", "immediate")
		db, err = sql.Open("sqlite", "file:"+path+"?"+v.Encode())
	}
	if err != nil {
		return nil, fmt.Errorf("config database: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	if err := d.migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("config database %s: %w", config.RedactURL(d.URL), unwrapCtx(ctx, err))
	}
	d.db = db
	return db, nil
}

func (d *Database) migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	schema := sqliteSchema
	if d.postgres() {
		schema = pgSchema
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(4242010)`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the connection pool.
func (d *Database) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// Load implements Source.
func (d *Database) Load(ctx context.Context) Revision {
	rev, _ := d.read(ctx)
	return rev
}

// read returns the document and its version (0 when absent or unreadable).
func (d *Database) read(ctx context.Context) (Revision, int64) {
	db, err := d.open(ctx)
	if err != nil {
		return Revision{Source: d.Name(), Err: err}, 0
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	var content, hash string
	var version int64
	query := d.q(`SELECT content, version, hash FROM config_documents WHERE name = ?`)
	err = db.QueryRowContext(ctx, query, d.Document).Scan(&content, &version, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil {
		// A pooled connection may have died with the network; the read is
		// idempotent, so try once more on a fresh one.
		err = db.QueryRowContext(ctx, query, d.Document).Scan(&content, &version, &hash)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		d.setVersion(0)
		return Revision{Source: d.Name(), Err: fmt.Errorf("config document %q: %w", d.Document, ErrNotFound)}, 0
	case err != nil:
		return Revision{Source: d.Name(), Err: fmt.Errorf("config database read %q: %w", d.Document, unwrapCtx(ctx, err))}, 0
	}
	d.setVersion(version)
	rev := sized(d.Name(), []byte(content), d.MaxBytes)
	if rev.Err != nil {
		return rev, version
	}
	if hash == "" {
		d.fillHash(ctx, db, version, rev.Hash)
	}
	return rev, version
}

// fillHash records the hash of a version written without one (SQLite's
// trigger versions direct edits but cannot hash). A failure is harmless:
// readers hash the content themselves, and the next read tries again.
func (d *Database) fillHash(ctx context.Context, db *sql.DB, version int64, hash string) {
	for _, q := range []string{
		`UPDATE config_documents SET hash = ? WHERE name = ? AND version = ? AND hash = ''`,
		`UPDATE config_document_history SET hash = ? WHERE name = ? AND version = ? AND hash = ''`,
	} {
		if _, err := db.ExecContext(ctx, d.q(q), hash, d.Document, version); err != nil {
			return
		}
	}
}

func (d *Database) setVersion(v int64) {
	d.mu.Lock()
	d.version = v
	d.mu.Unlock()
}

// Version is the document version of the last successful read (0: absent).
func (d *Database) Version() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// Watch implements Source.
func (d *Database) Watch(ctx context.Context, notify func(Revision)) error {
	if d.postgres() {
		return d.listen(ctx, notify)
	}
	return d.poll(ctx, notify)
}

func (d *Database) listen(ctx context.Context, notify func(Revision)) error {
	if _, err := d.open(ctx); err != nil {
		return err
	}
	// Listening before reading: a change committed after the read is
	// announced on this connection.
	send := func() error {
		rev, _ := d.read(ctx)
		if !watchable(rev.Err) {
			return rev.Err
		}
		notify(rev)
		return nil
	}
	err := pg.Listen(ctx, d.URL, "hector_config", send, func(payload string) error {
		if payload != d.Document {
			return nil
		}
		return send()
	}, nil)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("config database listen: %w", err)
}

func (d *Database) poll(ctx context.Context, notify func(Revision)) error {
	interval := d.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	db, err := d.open(ctx)
	if err != nil {
		return err
	}
	last := int64(-1)
	for {
		qctx, cancel := context.WithTimeout(ctx, d.timeout())
		var v int64
		err := db.QueryRowContext(qctx, `SELECT version FROM config_documents WHERE name = ?`, d.Document).Scan(&v)
		cancel()
		if errors.Is(err, sql.ErrNoRows) {
			v, err = 0, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("config database poll: %w", err)
		}
		if v != last {
			rev, read := d.read(ctx)
			if !watchable(rev.Err) {
				return rev.Err
			}
			last = read
			notify(rev)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// watchable reports whether a read's outcome is news for the watch to
// report (a document, or one that is absent or too large) rather than a
// failure of the connection that ends the watch.
func watchable(err error) bool {
	var tooLarge *TooLargeError
	return err == nil || errors.Is(err, ErrNotFound) || errors.As(err, &tooLarge)
}

// Write implements Writer: stores data as a new version, based on the
// version this source last read (an absent document when it read none).
func (d *Database) Write(data []byte) error {
	_, err := d.Put(context.Background(), data, d.Version(), d.Actor)
	return err
}

// Put stores data as the document's next version if the current version is
// expected (0: the document must not exist; -1: any version), records it in
// the history, and returns the new version. A mismatch is a *ConflictError
// and changes nothing.
func (d *Database) Put(ctx context.Context, data []byte, expected int64, actor string) (int64, error) {
	db, err := d.open(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	v, committing, err := d.put(ctx, db, data, expected, actor)
	var conflict *ConflictError
	if err != nil && !committing && !errors.As(err, &conflict) && ctx.Err() == nil {
		// Nothing was committed (a pooled connection may have died with
		// the network): try once more on a fresh connection.
		v, _, err = d.put(ctx, db, data, expected, actor)
	}
	return v, err
}

// put is one attempt of Put; committing reports whether the failure came
// from COMMIT, after which the outcome is unknown and no retry is safe.
func (d *Database) put(ctx context.Context, db *sql.DB, data []byte, expected int64, actor string) (v int64, committing bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("config database write: %w", unwrapCtx(ctx, err))
	}
	defer tx.Rollback()
	lock := ""
	if d.postgres() {
		lock = " FOR UPDATE"
	}
	var current int64
	err = tx.QueryRowContext(ctx, d.q(`SELECT version FROM config_documents WHERE name = ?`+lock), d.Document).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
		current, err = 0, nil
		if d.postgres() { // serialize creators of the same name
			_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, d.Document)
			if err == nil {
				err = tx.QueryRowContext(ctx, `SELECT version FROM config_documents WHERE name = $1`, d.Document).Scan(&current)
				if errors.Is(err, sql.ErrNoRows) {
					current, err = 0, nil
				}
			}
		}
	}
	if err != nil {
		return 0, false, fmt.Errorf("config database write: %w", unwrapCtx(ctx, err))
	}
	if expected >= 0 && expected != current {
		return 0, false, &ConflictError{Name: d.Document, Expected: expected, Current: current}
	}
	// Versions continue past deletions: the history keeps the highest.
	var maxHist sql.NullInt64
	if err := tx.QueryRowContext(ctx, d.q(`SELECT MAX(version) FROM config_document_history WHERE name = ?`), d.Document).Scan(&maxHist); err != nil {
		return 0, false, fmt.Errorf("config database write: %w", err)
	}
	next := max(current, maxHist.Int64) + 1
	hash := config.Hash(data)
	if current == 0 {
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO config_documents (name, content, hash, version, updated_by) VALUES (?, ?, ?, ?, ?)`),
			d.Document, string(data), hash, next, actor)
	} else {
		_, err = tx.ExecContext(ctx, d.q(`UPDATE config_documents SET content = ?, hash = ?, version = ?, updated_by = ?, updated_at = `+d.now()+` WHERE name = ?`),
			string(data), hash, next, actor, d.Document)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO config_document_history (name, version, content, hash, actor) VALUES (?, ?, ?, ?, ?)`),
			d.Document, next, string(data), hash, actor)
	}
	if err != nil {
		return 0, false, fmt.Errorf("config database write: %w", unwrapCtx(ctx, err))
	}
	if err := tx.Commit(); err != nil {
		return 0, true, fmt.Errorf("config database write: commit: %w", unwrapCtx(ctx, err))
	}
	d.setVersion(next)
	return next, false, nil
}

// Delete removes the document (the history keeps it, marked deleted).
func (d *Database) Delete(ctx context.Context, actor string) error {
	db, err := d.open(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int64
	var content, hash string
	err = tx.QueryRowContext(ctx, d.q(`SELECT version, content, hash FROM config_documents WHERE name = ?`), d.Document).Scan(&version, &content, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("config document %q: %w", d.Document, ErrNotFound)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, d.q(`DELETE FROM config_documents WHERE name = ?`), d.Document)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO config_document_history (name, version, content, hash, actor, deleted) VALUES (?, ?, ?, ?, ?, `+d.true()+`)`),
			d.Document, version+1, content, hash, actor)
	}
	if err == nil {
		err = tx.Commit()
	}
	return err
}

func (d *Database) now() string {
	if d.postgres() {
		return "now()"
	}
	return "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
}

func (d *Database) true() string {
	if d.postgres() {
		return "true"
	}
	return "1"
}

// DatabaseApps is the catalog of a Database source: the documents named
// NAME/apps/APP after its document's name ("default":
// "default/apps/APP"). Documents under the prefix whose rest
// is not an app name are ignored. Writes are versioned and recorded in the
// history like Database.Put's. On PostgreSQL, Watch listens to the
// hector_config notifications on one connection for the whole catalog; on
// SQLite it polls the names and versions under the prefix. It shares the
// source's connection pool; closing the source closes it.
type DatabaseApps struct {
	d      *Database
	Prefix string
}

// Apps returns the catalog beside the source's document.
func (d *Database) Apps() Catalog { return &DatabaseApps{d: d, Prefix: appsPrefix(d.Document)} }

// Name implements Catalog: "database:PREFIX".
func (a *DatabaseApps) Name() string { return "database:" + a.Prefix }

// AppSource implements Catalog: "database:PREFIX" and the app.
func (a *DatabaseApps) AppSource(app string) string { return "database:" + a.Prefix + app }

// doc returns a Database for one app's document on the source's pool.
func (a *DatabaseApps) doc(ctx context.Context, app string) (*Database, error) {
	if err := CheckAppName(app); err != nil {
		return nil, err
	}
	db, err := a.d.open(ctx)
	if err != nil {
		return nil, err
	}
	d := a.d
	return &Database{URL: d.URL, Document: a.Prefix + app, Timeout: d.Timeout, Actor: d.Actor, MaxBytes: d.MaxBytes, db: db}, nil
}

// app returns the app a document's name stands for, and false for others.
func (a *DatabaseApps) app(name string) (string, bool) {
	app, ok := strings.CutPrefix(name, a.Prefix)
	return app, ok && CheckAppName(app) == nil
}

// list reads the apps with one query (content too, or only versions) and
// returns their documents and versions.
func (a *DatabaseApps) list(ctx context.Context, content bool) (map[string]Revision, map[string]int64, error) {
	db, err := a.d.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.d.timeout())
	defer cancel()
	cols := "name, version, ''"
	if content {
		cols = "name, version, content"
	}
	// substr, not LIKE: the prefix may hold _ or %.
	rows, err := db.QueryContext(ctx, a.d.q(`SELECT `+cols+` FROM config_documents WHERE substr(name, 1, ?) = ?`),
		utf8.RuneCountInString(a.Prefix), a.Prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("config database list %q: %w", a.Prefix, unwrapCtx(ctx, err))
	}
	defer rows.Close()
	apps, versions := map[string]Revision{}, map[string]int64{}
	for rows.Next() {
		var name, text string
		var v int64
		if err := rows.Scan(&name, &v, &text); err != nil {
			return nil, nil, fmt.Errorf("config database list %q: %w", a.Prefix, err)
		}
		if app, ok := a.app(name); ok {
			apps[app], versions[app] = sized(a.AppSource(app), []byte(text), a.d.MaxBytes), v
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("config database list %q: %w", a.Prefix, unwrapCtx(ctx, err))
	}
	return apps, versions, nil
}

// List implements Catalog: one query.
func (a *DatabaseApps) List(ctx context.Context) (map[string]Revision, error) {
	apps, _, err := a.list(ctx, true)
	return apps, err
}

// Load implements Catalog.
func (a *DatabaseApps) Load(ctx context.Context, app string) Revision {
	d, err := a.doc(ctx, app)
	if err != nil {
		return Revision{Source: a.AppSource(app), Err: err}
	}
	return d.Load(ctx)
}

// Put implements Catalog: Database.Put of the app's document at any
// version, recorded in the history with the source's Actor.
func (a *DatabaseApps) Put(ctx context.Context, app string, data []byte) error {
	d, err := a.doc(ctx, app)
	if err != nil {
		return err
	}
	_, err = d.Put(ctx, data, -1, a.d.Actor)
	return err
}

// Delete implements Catalog: Database.Delete of the app's document.
func (a *DatabaseApps) Delete(ctx context.Context, app string) error {
	d, err := a.doc(ctx, app)
	if err != nil {
		return err
	}
	return d.Delete(ctx, a.d.Actor)
}

// Watch implements Catalog.
func (a *DatabaseApps) Watch(ctx context.Context, notify func(app string, rev Revision)) error {
	if _, err := a.d.open(ctx); err != nil {
		return err
	}
	if a.d.postgres() {
		return a.listen(ctx, notify)
	}
	return a.poll(ctx, notify)
}

// listen reports every app once the LISTEN connection is up, then reads
// each app whose document a notification names.
func (a *DatabaseApps) listen(ctx context.Context, notify func(string, Revision)) error {
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(a.AppSource(app), app) }
	ready := func() error {
		apps, err := a.List(ctx)
		if err == nil {
			report.all(apps, gone)
		}
		return err
	}
	err := pg.Listen(ctx, a.d.URL, "hector_config", ready, func(payload string) error {
		app, ok := a.app(payload)
		if !ok {
			return nil
		}
		rev := a.Load(ctx, app)
		if !watchable(rev.Err) {
			return rev.Err
		}
		report.set(app, rev)
		return nil
	}, nil)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("config database listen: %w", err)
}

// poll lists the apps' versions every PollInterval and reads the apps
// whose version changed.
func (a *DatabaseApps) poll(ctx context.Context, notify func(string, Revision)) error {
	interval := a.d.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(a.AppSource(app), app) }
	apps, last, err := a.list(ctx, true)
	for ; err == nil; _, last, err = a.changes(ctx, last, report) {
		if apps != nil {
			report.all(apps, gone)
			apps = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("config database poll: %w", err)
}

// changes polls the versions, reports the apps whose version differs from
// last (reading them) and those gone, and returns the new versions.
func (a *DatabaseApps) changes(ctx context.Context, last map[string]int64, report *appReport) (bool, map[string]int64, error) {
	_, versions, err := a.list(ctx, false)
	if err != nil {
		return false, last, err
	}
	news := false
	for app, v := range versions {
		if last[app] == v {
			continue
		}
		rev := a.Load(ctx, app)
		if !watchable(rev.Err) {
			return news, last, rev.Err
		}
		news = report.set(app, rev) || news
	}
	for app := range last {
		if _, ok := versions[app]; !ok {
			news = report.set(app, appNotFound(a.AppSource(app), app)) || news
		}
	}
	return news, versions, nil
}
