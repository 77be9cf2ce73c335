package reload

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/testsvc"
)

// A document edited with plain SQL (psql, the sqlite3 shell), not through
// Put, is applied, and versioned, hashed and recorded in the history as a
// Put would have done.
func TestDirectSQLEditIsVersioned(t *testing.T) {
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			var dbURL, driver, dsn string
			if kind == "postgres" {
				dbURL = testsvc.Postgres(t)
				driver, dsn = "pgx", dbURL
			} else {
				path := filepath.Join(t.TempDir(), "config.db")
				dbURL, driver, dsn = "sqlite://"+path, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)"
			}
			src := &source.Database{URL: dbURL, Document: "main", PollInterval: 50 * time.Millisecond}
			t.Cleanup(func() { src.Close() })
			if _, err := src.Put(context.Background(), []byte(doc("v1")), 0, "test"); err != nil {
				t.Fatal(err)
			}
			h := startSource(t, src)
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q := func(s string) string {
				if kind == "postgres" {
					s = strings.Replace(strings.Replace(s, "?", "$1", 1), "?", "$2", 1)
				}
				return s
			}
			edited := doc("edited with SQL")
			if _, err := db.Exec(q(`UPDATE config_documents SET content = ? WHERE name = ?`), edited, "main"); err != nil {
				t.Fatal(err)
			}
			o := h.appliedInstruction(t, "edited with SQL", 5*time.Second)
			want := config.Hash([]byte(edited))
			if o.Hash != want {
				t.Fatalf("applied hash %s, want %s", o.Hash, want)
			}
			// The next read fills in what SQLite cannot compute; wait for it.
			deadline := time.Now().Add(5 * time.Second)
			var version int64
			var hash, actor string
			for {
				if err := db.QueryRow(q(`SELECT version, hash, updated_by FROM config_documents WHERE name = ?`), "main").Scan(&version, &hash, &actor); err != nil {
					t.Fatal(err)
				}
				if hash != "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if version != 2 || hash != want || !strings.HasPrefix(actor, "sql") {
				t.Fatalf("document after the SQL edit: version %d, hash %q, updated_by %q; want 2, %s, sql…", version, hash, actor, want)
			}
			var hv int64
			var hh, ha string
			if err := db.QueryRow(q(`SELECT version, hash, actor FROM config_document_history WHERE name = ? ORDER BY version DESC LIMIT 1`), "main").Scan(&hv, &hh, &ha); err != nil {
				t.Fatal(err)
			}
			if hv != 2 || hh != want || ha != actor {
				t.Fatalf("history after the SQL edit: version %d, hash %q, actor %q", hv, hh, ha)
			}
			// Put continues from there, based on the version the edit made.
			if v, err := src.Put(context.Background(), []byte(doc("v3")), 2, "test"); err != nil || v != 3 {
				t.Fatalf("put after the SQL edit: %d %v", v, err)
			}
			h.appliedInstruction(t, "v3", 5*time.Second)
			// An UPDATE that leaves the content as it is makes no version.
			if _, err := db.Exec(q(`UPDATE config_documents SET updated_by = ? WHERE name = ?`), "someone", "main"); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(q(`SELECT version FROM config_documents WHERE name = ?`), "main").Scan(&version); err != nil || version != 3 {
				t.Fatalf("version after an update of another column: %d %v", version, err)
			}
		})
	}
}
