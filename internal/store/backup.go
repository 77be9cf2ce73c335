package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/hector-run/hector/internal/config"
)

// ErrPostgresBackup is Backup's answer for a PostgreSQL database: its
// backups are pg_dump's; PgDumpCommand says how.
var ErrPostgresBackup = errors.New("a PostgreSQL database is backed up with pg_dump")

// Backup copies the SQLite database at rawURL to the new file to, online:
// the server may keep running and writing (SQLite's VACUUM INTO reads one
// consistent snapshot, and writes a compact, self-contained database with
// no WAL to go with it). to must not exist; it is created with mode
// 0600, its directory with 0700. Nothing is migrated or changed in the
// source. A postgres:// URL gives ErrPostgresBackup.
func Backup(ctx context.Context, rawURL, to string) error {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return ErrPostgresBackup
	}
	path, ok := strings.CutPrefix(rawURL, "sqlite://")
	if !ok || path == "" {
		return fmt.Errorf("database %q: want sqlite://PATH or postgres://…", config.RedactURL(rawURL))
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("backup %s: the file exists; choose a new name", to)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Owner-only before SQLite writes into it; VACUUM INTO needs it empty.
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		os.Remove(to)
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, to); err != nil {
		os.Remove(to)
		return fmt.Errorf("backup of %s to %s: %w", path, to, err)
	}
	return nil
}

// PgDumpCommand is the pg_dump command line that backs up the PostgreSQL
// database at rawURL into to (custom format, for pg_restore), with the
// URL's password left out: pg_dump reads it from PGPASSWORD or ~/.pgpass.
//
// The password is removed from the userinfo and from a password query
// parameter; a URL that does not parse (a password with an unescaped #)
// is not shown at all: the command names "$DATABASE_URL" instead.
func PgDumpCommand(rawURL, to string) string {
	shown := ""
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		shown = u.String()
	}
	if shown == "" {
		return fmt.Sprintf(`pg_dump --format=custom --file=%s "$DATABASE_URL"`, shellQuote(to))
	}
	return fmt.Sprintf("pg_dump --format=custom --file=%s %s", shellQuote(to), shellQuote(shown))
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
