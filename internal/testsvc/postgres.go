package testsvc

import (
	"context"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresAdminURL is the machine's PostgreSQL server that tests create
// their databases on: HECTOR_TEST_POSTGRES_URL, by default the local
// server with trust authentication.
func PostgresAdminURL() string {
	if u := os.Getenv("HECTOR_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Postgres creates an empty database for the test and returns its URL; the
// database is dropped (its connections terminated) when the test ends.
// host:port, if not empty, replaces the server address in the returned URL
// (to go through a Proxy).
func Postgres(t T) string {
	t.Helper()
	admin := PostgresAdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		msg := "PostgreSQL at " + admin + ": " + err.Error()
		if os.Getenv("HECTOR_TEST_SERVICES") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(context.Background())
	name := RandomName("hector_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String()
}

// WithHost returns the database URL pointing at another host:port.
func WithHost(rawURL, hostport string) string {
	u, _ := url.Parse(rawURL)
	u.Host = hostport
	return u.String()
}

// TerminateConnections ends every other session on the URL's database, as
// a server restart would from the clients' side.
func TerminateConnections(t T, rawURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
}
