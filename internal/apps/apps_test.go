package apps_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/apps"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/testsvc"
)

func noEnv(string) (string, bool) { return "", false }

// mainRuntime is a committed main configuration on the database at url.
func mainRuntime(t *testing.T, url string) *snapshot.Runtime {
	t.Helper()
	doc, errs := config.Parse([]byte("llms: {e: {provider: echo}}\nagents: {main: {llm: e}}\n"), noEnv)
	if errs != nil {
		t.Fatal(errs)
	}
	snap, err := snapshot.Build(context.Background(), doc.Config, nil, snapshot.Options{DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	snap.Version = 1
	rt := &snapshot.Runtime{}
	rt.Commit(snap)
	t.Cleanup(rt.Close)
	return rt
}

func appDoc(agent string) []byte {
	return []byte(fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {%s: {llm: e}}\n", agent))
}

// agentsOf names the agents tenant is served, "" without a runtime or a
// snapshot.
func agentsOf(r *apps.Registry, tenant string) string {
	rt := r.Runtime(tenant)
	if rt == nil {
		return ""
	}
	snap, release := rt.Acquire()
	defer release()
	if snap == nil {
		return ""
	}
	var names []string
	for n := range snap.Agents {
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backend is a configuration backend holding apps: the catalog the
// registry watches, and a writer that is another process (etcdctl, psql, a
// second Hector) changing an app's document.
type backend struct {
	name   string
	open   func(t *testing.T) (cat source.Catalog, dbURL string, put func(app string, data []byte), del func(app string))
	shared bool // the catalog's database is the main database
}

func backends() []backend {
	return []backend{
		{name: "etcd", open: func(t *testing.T) (source.Catalog, string, func(string, []byte), func(string)) {
			cfg := source.NewEtcdConfig([]string{testsvc.Etcd(t).Addr()})
			main := &source.Etcd{Key: "/hector/production/config", Config: cfg}
			t.Cleanup(func() { main.Close() })
			other := &source.Etcd{Key: "/hector/production/config", Config: cfg} // another client
			t.Cleanup(func() { other.Close() })
			put := func(app string, data []byte) {
				if err := other.Apps().Put(context.Background(), app, data); err != nil {
					t.Fatal(err)
				}
			}
			del := func(app string) {
				if err := other.Apps().Delete(context.Background(), app); err != nil {
					t.Fatal(err)
				}
			}
			return main.Apps(), "sqlite://" + filepath.Join(t.TempDir(), "h.db"), put, del
		}},
		{name: "postgres", open: databaseBackend(func(t *testing.T) string { return testsvc.Postgres(t) })},
		{name: "sqlite", open: databaseBackend(func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "h.db") })},
	}
}

// databaseBackend keeps the apps in the database backend, in the same
// database as the main store, written by a second connection.
func databaseBackend(url func(*testing.T) string) func(t *testing.T) (source.Catalog, string, func(string, []byte), func(string)) {
	return func(t *testing.T) (source.Catalog, string, func(string, []byte), func(string)) {
		u := url(t)
		main := &source.Database{URL: u, Document: "default", PollInterval: 50 * time.Millisecond}
		t.Cleanup(func() { main.Close() })
		other := &source.Database{URL: u, Document: "default"}
		t.Cleanup(func() { other.Close() })
		put := func(app string, data []byte) {
			if err := other.Apps().Put(context.Background(), app, data); err != nil {
				t.Fatal(err)
			}
		}
		del := func(app string) {
			if err := other.Apps().Delete(context.Background(), app); err != nil {
				t.Fatal(err)
			}
		}
		return main.Apps(), u, put, del
	}
}

// Apps stored in etcd and in the database backend are watched live: a new
// app starts, a changed one applies, an invalid one is rejected for that
// app alone, a removed one stops; each has its own history.
func TestAppsAreWatchedLive(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { testAppsAreWatchedLive(t, b) })
	}
}

func testAppsAreWatchedLive(t *testing.T, b backend) {
	cat, dbURL, put, del := b.open(t)
	put("alpha", appDoc("a1"))
	var mu sync.Mutex
	var rejected []string
	r := &apps.Registry{Catalog: cat, Main: mainRuntime(t, dbURL), Env: noEnv, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnOutcome: func(app string, o reload.Outcome) {
			if o.Result == reload.Rejected {
				mu.Lock()
				rejected = append(rejected, app+": "+o.Errors.Error())
				mu.Unlock()
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	r.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	if got := agentsOf(r, "alpha"); got != "a1" {
		t.Fatalf("alpha at startup serves %q", got)
	}
	if got := agentsOf(r, ""); got != "main" {
		t.Fatalf("the main tenant serves %q", got)
	}
	put("beta", appDoc("b1"))
	eventually(t, "beta starts", func() bool { return agentsOf(r, "beta") == "b1" })
	put("alpha", appDoc("a2"))
	eventually(t, "alpha's change applies", func() bool { return agentsOf(r, "alpha") == "a2" })
	put("alpha", append(appDoc("a3"), "server: {port: 1}\n"...))
	eventually(t, "alpha's invalid document is rejected", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rejected) > 0 && strings.Contains(rejected[len(rejected)-1], "alpha: 3:1: server: an app's document may not set server")
	})
	if a, b := agentsOf(r, "alpha"), agentsOf(r, "beta"); a != "a2" || b != "b1" {
		t.Errorf("after alpha's invalid document: alpha %q, beta %q", a, b)
	}
	del("beta")
	eventually(t, "beta stops", func() bool { return r.Runtime("beta") == nil })
	snap, release := r.Main.Acquire()
	defer release()
	r.Get("alpha").Reconciler.FlushHistory()
	versions, err := snap.Store.ConfigVersions(context.Background(), "alpha", 0)
	if err != nil || len(versions) != 2 || versions[0].Version != 2 || versions[0].App != "alpha" {
		t.Fatalf("alpha's history: %+v %v", versions, err)
	}
	if main, _ := snap.Store.ConfigVersions(context.Background(), "", 0); len(main) != 0 {
		t.Errorf("the main history holds %d versions; none were recorded for it here", len(main))
	}
}

// When the main configuration moves to another database, the apps restart
// on it: their history continues there.
func TestAppsFollowTheMainDatabase(t *testing.T) {
	dir := t.TempDir()
	cat := (&source.File{Path: filepath.Join(dir, "hector.yaml")}).Apps()
	if err := cat.Put(context.Background(), "alpha", appDoc("a1")); err != nil {
		t.Fatal(err)
	}
	main := mainRuntime(t, "sqlite://"+filepath.Join(dir, "one.db"))
	r := &apps.Registry{Catalog: cat, Main: main, Env: noEnv, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	defer r.Close()
	r.Rebase() // the same database: nothing to do
	before := r.Get("alpha")
	doc, _ := config.Parse([]byte("llms: {e: {provider: echo}}\nagents: {main: {llm: e}}\n"), noEnv)
	next, err := snapshot.Build(ctx, doc.Config, main.Current(), snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(dir, "two.db")})
	if err != nil {
		t.Fatal(err)
	}
	next.Version = 2
	inflight, done := before.Runtime.Acquire() // a request of alpha's still running
	main.Commit(next)
	r.Rebase()
	if err := inflight.Store.Ping(ctx); err != nil {
		t.Errorf("the old database closed under a request in flight: %v", err)
	}
	done()
	after := r.Get("alpha")
	if after == before {
		t.Fatal("alpha was not restarted on the new database")
	}
	snap, release := after.Runtime.Acquire()
	defer release()
	if snap == nil || snap.Store != next.Store || agentsOf(r, "alpha") != "a1" {
		t.Fatalf("alpha after the move: %+v", snap)
	}
	after.Reconciler.FlushHistory()
	if vs, err := next.Store.ConfigVersions(ctx, "alpha", 0); err != nil || len(vs) != 1 {
		t.Fatalf("alpha's history in the new database: %+v %v", vs, err)
	}
}

// While etcd is down the apps keep serving their last documents and the
// registry reports the catalog degraded; once etcd is back it recovers
// and changes apply again.
func TestAppsServeWhileTheCatalogIsDown(t *testing.T) {
	etcd := testsvc.Etcd(t)
	cfg := source.NewEtcdConfig([]string{etcd.Addr()})
	main := &source.Etcd{Key: "/hector/production", Config: cfg}
	t.Cleanup(func() { main.Close() })
	other := &source.Etcd{Key: "/hector/production", Config: cfg}
	t.Cleanup(func() { other.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	if err := other.Apps().Put(ctx, "alpha", appDoc("a1")); err != nil {
		t.Fatal(err)
	}
	var errs sync.Map
	r := &apps.Registry{Catalog: main.Apps(), Main: mainRuntime(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db")), Env: noEnv,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnCatalogError: func(err error) { errs.Store("seen", err) }}
	r.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	if st := r.Status(); st.Status != "ok" || st.Serving != 1 {
		t.Fatalf("status at start: %+v", st)
	}
	etcd.Stop()
	eventually(t, "the catalog is reported degraded", func() bool { return r.Status().Status == "degraded" })
	if _, seen := errs.Load("seen"); !seen {
		t.Error("OnCatalogError was not called")
	}
	if got := agentsOf(r, "alpha"); got != "a1" {
		t.Fatalf("alpha while etcd is down serves %q", got)
	}
	etcd.Start()
	eventually(t, "the catalog recovers", func() bool { return r.Status().Status == "ok" })
	if err := other.Apps().Put(ctx, "alpha", appDoc("a2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alpha's change after the outage applies", func() bool { return agentsOf(r, "alpha") == "a2" })
}
