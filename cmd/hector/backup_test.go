package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/store"
)

// hector backup copies a SQLite database while it is being written, and
// the copy opens as a Hector database holding what was committed; an
// existing target is refused; PostgreSQL gets the pg_dump command, its
// password left out.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "live.db")
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTask(ctx, &store.Task{ID: "t_before", Agent: "a", SessionID: "s", Input: "x", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var writes atomic.Int64
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // the server keeps writing during the backup
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := st.CreateTask(ctx, &store.Task{ID: fmt.Sprintf("t_%d", i), Agent: "a", SessionID: "s", Input: "x", MaxAttempts: 1}); err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
		}
	}()
	for writes.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	to := filepath.Join(dir, "backups", "copy.db")
	code, out, errOut := runCLI("backup", "--to", to, "--database", url)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: %d %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v %v", fi, err)
	}
	cp, err := store.Open(ctx, "sqlite://"+to)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.GetTask(ctx, "t_before"); err != nil {
		t.Errorf("the copy lacks what was committed before it: %v", err)
	}
	if code, _, errOut := runCLI("backup", "--to", to, "--database", url); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("a backup over an existing file: %d %s", code, errOut)
	}
	code, out, _ = runCLI("backup", "--to", "/backups/h.dump", "--database", "postgres://hector:s3cret@db:5432/hector")
	if code != 0 || !strings.HasPrefix(out, "pg_dump --format=custom --file=/backups/h.dump ") || strings.Contains(out, "s3cret") || !strings.Contains(out, "hector@db:5432") {
		t.Errorf("PostgreSQL: %d %q", code, out)
	}
	for _, u := range []string{"postgres://u@db/h?password=s3cret&sslmode=disable", "postgres://u:pa#s3cret@db/h", "postgres://u:p%zz-s3cret@db/h"} {
		if _, out, _ := runCLI("backup", "--to", "x.dump", "--database", u); strings.Contains(out, "s3cret") || !strings.Contains(out, "pg_dump") {
			t.Errorf("the pg_dump command for %s: %q", u, out)
		}
	}
	if code, _, _ := runCLI("backup"); code != 2 {
		t.Errorf("without --to: %d", code)
	}
}

// Without --database the configuration's database.url is backed up; the
// rest of the document (variables the backup job does not have) is not
// read.
func TestBackupDatabaseFromConfig(t *testing.T) {
	t.Setenv("HECTOR_TEST_DB_DIR", "/var/lib/hector")
	p := writeConfig(t, "llms: {gpt: {provider: openai, model: m, api_key: \"${UNSET_KEY_FOR_BACKUP}\"}}\ndatabase: {url: \"sqlite://${HECTOR_TEST_DB_DIR}/h.db\"}\n")
	if got, err := backupDatabase("", p); err != nil || got != "sqlite:///var/lib/hector/h.db" {
		t.Errorf("from the config: %q %v", got, err)
	}
	if got, _ := backupDatabase("", filepath.Join(t.TempDir(), "absent.yaml")); got != "sqlite://.hector/hector.db" {
		t.Errorf("without a config: %q", got)
	}
	if got, _ := backupDatabase("sqlite://x.db", p); got != "sqlite://x.db" {
		t.Errorf("--database wins: %q", got)
	}
	// The original Hector's databases, read as Parse reads them.
	legacy := writeConfig(t, "databases:\n  main: {driver: sqlite, database: /var/lib/hector/real.db}\nserver:\n  tasks: {backend: sql, database: main}\n")
	if got, err := backupDatabase("", legacy); err != nil || got != "sqlite:///var/lib/hector/real.db" {
		t.Errorf("from databases: %q %v", got, err)
	}
	unset := writeConfig(t, "database: {url: \"postgres://h:${UNSET_PW_FOR_BACKUP}@db/h\"}\n")
	if _, err := backupDatabase("", unset); err == nil || !strings.Contains(err.Error(), "environment variable UNSET_PW_FOR_BACKUP is not set") {
		t.Errorf("an unset variable in the URL: %v", err)
	}
	pointer := writeConfig(t, "config: {provider: etcd, key: /hector/production}\n")
	if _, err := backupDatabase("", pointer); err == nil || !strings.Contains(err.Error(), "name the database with --database") {
		t.Errorf("a pointer: %v", err)
	}
}
