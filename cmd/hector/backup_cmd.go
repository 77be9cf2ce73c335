package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/store"
)

// backupCmd runs `hector backup --to FILE`: an online copy of the SQLite
// database (the server may keep running), or, for PostgreSQL, the
// pg_dump command that backs it up. The database is --database, else the
// configuration's database.url (--config), else the default.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := newEnvFlags(fs)
	to := fs.String("to", "", "the new file to write the copy to (required; it must not exist)")
	db := fs.String("database", "", "the database URL (default: database.url of --config, else "+config.DefaultDatabaseURL+")")
	env.bind("database", "HECTOR_DATABASE")
	cfgPath := fs.String("config", "hector.yaml", "the configuration file whose database.url is backed up without --database")
	env.bind("config", "HECTOR_CONFIG")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if err := env.apply(); err != nil {
		fmt.Fprintln(stderr, "hector backup:", err)
		return 2
	}
	if *to == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: hector backup --to FILE [--database URL | --config FILE]")
		return 2
	}
	url, err := backupDatabase(*db, *cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "hector backup:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	switch err := store.Backup(ctx, url, *to); {
	case errors.Is(err, store.ErrPostgresBackup):
		fmt.Fprintln(stderr, "hector backup: PostgreSQL is backed up with pg_dump; run (the password from PGPASSWORD or ~/.pgpass):")
		fmt.Fprintln(stdout, store.PgDumpCommand(url, *to))
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "hector backup:", config.RedactText(err.Error()))
		return 1
	}
	var size int64
	if st, err := os.Stat(*to); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes, %s)\n", config.RedactURL(url), *to, size, time.Since(start).Round(time.Millisecond))
	return 0
}

// backupDatabase is the database to back up: db, else the document's
// database.url, else the default. A document that cannot be read is an
// error only when it is needed and was named.
func backupDatabase(db, cfgPath string) (string, error) {
	if db != "" {
		return db, nil
	}
	data, err := os.ReadFile(cfgPath)
	if errors.Is(err, os.ErrNotExist) {
		return config.DefaultDatabaseURL, nil
	}
	if err != nil {
		return "", err
	}
	// Only the database is read, so variables the rest of the document
	// needs (an LLM's key) need not be set where backups run.
	u, err := config.DatabaseOf(data, os.LookupEnv)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfgPath, err)
	}
	if u == "" {
		return config.DefaultDatabaseURL, nil
	}
	return u, nil
}
