package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

const catalogMax = 200

// appEvent is one notification of a catalog's Watch.
type appEvent struct {
	app string
	rev Revision
}

// catalogBackend opens a source whose catalog is tested, and writes a
// document under a name that is not an app's (rel: relative to the apps
// prefix or directory), bypassing the catalog.
type catalogBackend struct {
	name    string // the catalog's Name()
	invalid string
	open    func(t *testing.T) Source
	raw     func(t *testing.T, src Source, rel string, data []byte)
}

func catalogBackends() map[string]catalogBackend {
	spec := func(s Spec) func(*testing.T) Source {
		return func(t *testing.T) Source { s.MaxBytes = catalogMax; return open(t, s) }
	}
	return map[string]catalogBackend{
		"file": {invalid: "Bad.yaml", open: func(t *testing.T) Source {
			return spec(Spec{Type: "file", Key: filepath.Join(t.TempDir(), "hector.yaml"), Debounce: 20 * time.Millisecond})(t)
		}, raw: func(t *testing.T, src Source, rel string, data []byte) {
			dir := src.(*File).Apps().(*FileApps).Dir
			for _, name := range []string{rel, ".hidden.yaml", "x.yaml~", "notes.txt"} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		"etcd": {name: "etcd:/hector/production/config/apps/", invalid: "x/y", open: func(t *testing.T) Source {
			return spec(Spec{Type: "etcd", Key: "/hector/production/config", Endpoints: []string{testsvc.Etcd(t).Addr()}})(t)
		}, raw: func(t *testing.T, src Source, rel string, data []byte) {
			e := src.(*Etcd)
			write(t, &Etcd{Key: "/hector/production/config/apps/" + rel, Config: e.Config}, data)
		}},
		"consul": {name: "consul:hector/config/apps/", invalid: "x/y", open: func(t *testing.T) Source {
			return spec(Spec{Type: "consul", Endpoints: []string{testsvc.Consul(t).Addr()}})(t)
		}, raw: func(t *testing.T, src Source, rel string, data []byte) {
			write(t, &Consul{Key: "hector/config/apps/" + rel, Addresses: src.(*Consul).Addresses}, data)
		}},
		"zookeeper": {name: "zookeeper:/hector/config/apps", invalid: "Bad", open: func(t *testing.T) Source {
			return spec(Spec{Type: "zookeeper", Endpoints: []string{testsvc.ZooKeeper(t).Addr()}})(t)
		}, raw: func(t *testing.T, src Source, rel string, data []byte) {
			write(t, &ZooKeeper{Path: "/hector/config/apps/" + rel, Servers: src.(*ZooKeeper).Servers}, data)
		}},
		"sqlite": {name: "database:prod/config/apps/", invalid: "x/y", open: func(t *testing.T) Source {
			return spec(Spec{Type: "database", Key: "prod/config", Endpoints: []string{"sqlite://" + filepath.Join(t.TempDir(), "c.db")}, PollInterval: 20 * time.Millisecond})(t)
		}, raw: rawDatabase("prod/config/apps/")},
		"postgres": {name: "database:default/apps/", invalid: "x/y", open: func(t *testing.T) Source {
			return spec(Spec{Type: "database", Endpoints: []string{testsvc.Postgres(t)}})(t)
		}, raw: rawDatabase("default/apps/")},
	}
}

func rawDatabase(prefix string) func(*testing.T, Source, string, []byte) {
	return func(t *testing.T, src Source, rel string, data []byte) {
		d := &Database{URL: src.(*Database).URL, Document: prefix + rel}
		defer d.Close()
		if _, err := d.Put(context.Background(), data, -1, "test"); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t *testing.T, w interface {
	Writer
	Close() error
}, data []byte) {
	t.Helper()
	defer w.Close()
	if err := w.Write(data); err != nil {
		t.Fatal(err)
	}
}

// waitApp reads events until one for app satisfies ok, failing on an event
// for a name that is not an app's.
func waitApp(t *testing.T, events <-chan appEvent, app string, ok func(Revision) bool) Revision {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if CheckAppName(ev.app) != nil {
				t.Fatalf("notified for %q, not an app name", ev.app)
			}
			if ev.app == app && ok(ev.rev) {
				return ev.rev
			}
		case <-deadline:
			t.Fatalf("no notification for app %q within 5s", app)
		}
	}
}

func hasData(want string) func(Revision) bool {
	return func(r Revision) bool { return r.Err == nil && string(r.Data) == want }
}

func isNotFound(r Revision) bool { return errors.Is(r.Err, ErrNotFound) }

func isTooLarge(r Revision) bool {
	var tl *TooLargeError
	return errors.As(r.Err, &tl) && tl.Limit == catalogMax
}

// Every backend's catalog lists, loads, stores, deletes and watches the
// apps beside the main document, ignores names that are not apps', and
// refuses an oversized document for that app only.
func TestCatalog(t *testing.T) {
	big := "# " + strings.Repeat("x", catalogMax) + "\n"
	for name, b := range catalogBackends() {
		t.Run(name, func(t *testing.T) {
			src := b.open(t)
			cat, ok := AppsOf(src)
			if !ok {
				t.Fatal("no catalog")
			}
			if b.name != "" && cat.Name() != b.name {
				t.Fatalf("Name() = %q, want %q", cat.Name(), b.name)
			}
			ctx := testsvc.Context(t, 60*time.Second)
			if apps, err := cat.List(ctx); err != nil || len(apps) != 0 {
				t.Fatalf("empty catalog: %v, %v", apps, err)
			}
			// A watch of the empty catalog (no apps directory, prefix or
			// parent node yet) sees the first app stored.
			early := make(chan appEvent, 1000)
			ectx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- cat.Watch(ectx, func(app string, rev Revision) { early <- appEvent{app, rev} }) }()
			defer func() { cancel(); <-done }()
			time.Sleep(300 * time.Millisecond)
			for app, doc := range map[string]string{"a": "a: 1\n", "b": "b: 1\n", "big": big} {
				if err := cat.Put(ctx, app, []byte(doc)); err != nil {
					t.Fatal(err)
				}
			}
			waitApp(t, early, "a", hasData("a: 1\n"))
			b.raw(t, src, b.invalid, []byte("x: 1\n"))
			checkList(t, ctx, cat, map[string]string{"a": "a: 1\n", "b": "b: 1\n"})
			checkCatalogWatch(t, ctx, cat)
		})
	}
}

// checkList wants exactly the apps of want and "big", over the limit.
func checkList(t *testing.T, ctx context.Context, cat Catalog, want map[string]string) {
	t.Helper()
	apps, err := cat.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != len(want)+1 || !isTooLarge(apps["big"]) {
		t.Fatalf("List: %+v", apps)
	}
	for app, doc := range want {
		r := apps[app]
		if r.Err != nil || string(r.Data) != doc || r.Source != cat.AppSource(app) || r.Hash == "" {
			t.Fatalf("List[%s] = %+v (source want %s)", app, r, cat.AppSource(app))
		}
	}
}

func checkCatalogWatch(t *testing.T, ctx context.Context, cat Catalog) {
	events := make(chan appEvent, 1000)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cat.Watch(wctx, func(app string, rev Revision) { events <- appEvent{app, rev} }) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()
	waitApp(t, events, "a", hasData("a: 1\n"))
	waitApp(t, events, "b", hasData("b: 1\n"))
	waitApp(t, events, "big", isTooLarge)
	put := func(app, doc string) {
		if err := cat.Put(ctx, app, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "a: 2\n")
	if r := waitApp(t, events, "a", hasData("a: 2\n")); r.Source != cat.AppSource("a") {
		t.Fatalf("source %q", r.Source)
	}
	if err := cat.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "b", isNotFound)
	put("c", "c: 1\n")
	waitApp(t, events, "c", hasData("c: 1\n"))
	if r := cat.Load(ctx, "missing"); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("Load of a missing app: %+v", r)
	}
	if r := cat.Load(ctx, "c"); r.Err != nil || string(r.Data) != "c: 1\n" || r.Source != cat.AppSource("c") {
		t.Fatalf("Load(c): %+v", r)
	}
	if err := cat.Delete(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a missing app: %v", err)
	}
	if err := cat.Put(ctx, "Not/valid", []byte("x")); err == nil {
		t.Fatal("Put of an invalid name succeeded")
	}
}

// The file catalog's watch notices an apps directory created after it
// started, follows the directory's removal and re-creation, and reports
// an app with two files as an error.
func TestCatalogFileAppsDirLater(t *testing.T) {
	main := filepath.Join(t.TempDir(), "hector.yaml")
	cat := (&File{Path: main, Debounce: 20 * time.Millisecond}).Apps()
	dir := filepath.Join(filepath.Dir(main), "apps")
	if cat.Name() != "file:"+dir || cat.AppSource("a") != "file:"+filepath.Join(dir, "a.yaml") {
		t.Fatalf("names: %s, %s", cat.Name(), cat.AppSource("a"))
	}
	ctx := testsvc.Context(t, 30*time.Second)
	events := make(chan appEvent, 100)
	go func() { _ = cat.Watch(ctx, func(app string, rev Revision) { events <- appEvent{app, rev} }) }()
	time.Sleep(200 * time.Millisecond) // the watch is set up
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "a.yml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := waitApp(t, events, "a", hasData("a: 1\n")); r.Source != "file:"+filepath.Join(dir, "a.yml") {
		t.Fatalf("source %s", r.Source)
	}
	if err := cat.Put(ctx, "a", []byte("a: 2\n")); err != nil { // overwrites a.yml
		t.Fatal(err)
	}
	waitApp(t, events, "a", hasData("a: 2\n"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "a", isNotFound)
	time.Sleep(100 * time.Millisecond)
	if err := cat.Put(ctx, "b", []byte("b: 1\n")); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "b", hasData("b: 1\n"))
	if err := os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"b": 2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "b", func(r Revision) bool { return r.Err != nil && strings.Contains(r.Err.Error(), "several files") })
	if _, ok := AppsOf(&Overlay{}); ok {
		t.Fatal("an overlay has no catalog")
	}
}

// The ZooKeeper catalog's watch survives a server restart within the
// session timeout: its watches are re-set on the new connection, and a
// change made after the restart is reported.
func TestCatalogZooKeeperRestart(t *testing.T) {
	proc := testsvc.ZooKeeper(t)
	z := &ZooKeeper{Path: "/hector/config", Servers: []string{proc.Addr()}, Timeout: 5 * time.Second}
	defer z.Close()
	cat := z.Apps()
	ctx := testsvc.Context(t, 60*time.Second)
	if err := cat.Put(ctx, "a", []byte("a: 1\n")); err != nil {
		t.Fatal(err)
	}
	events := make(chan appEvent, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cat.Watch(wctx, func(app string, rev Revision) { events <- appEvent{app, rev} }) }()
	defer func() { cancel(); <-done }()
	waitApp(t, events, "a", hasData("a: 1\n"))
	proc.Stop()
	time.Sleep(500 * time.Millisecond)
	proc.Start()
	if err := cat.Put(ctx, "a", []byte("a: 2\n")); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "a", hasData("a: 2\n"))
	if err := cat.Put(ctx, "b", []byte("b: 1\n")); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "b", hasData("b: 1\n"))
}

// A compaction between the catalog's list and its watch: it lists again,
// reporting what changed meanwhile (b removed, a changed), and watches on.
func TestCatalogEtcdCompaction(t *testing.T) {
	proc := testsvc.Etcd(t)
	ctx := testsvc.Context(t, 30*time.Second)
	e := &Etcd{Key: "/hector/config", Config: NewEtcdConfig([]string{proc.Addr()})}
	defer e.Close()
	cat := e.Apps()
	for _, app := range []string{"a", "b"} {
		if err := cat.Put(ctx, app, []byte(app+": 1\n")); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := e.client()
	if err != nil {
		t.Fatal(err)
	}
	lists := 0
	e.afterGet = func() {
		if lists++; lists == 1 {
			_ = cat.Put(ctx, "a", []byte("a: 2\n"))
			_ = cat.Delete(ctx, "b")
			resp, err := cli.Put(ctx, "/hector/other", "x")
			if err == nil {
				_, err = cli.Compact(ctx, resp.Header.Revision)
			}
			if err != nil {
				t.Error(err)
			}
		}
	}
	events := make(chan appEvent, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cat.Watch(wctx, func(app string, rev Revision) { events <- appEvent{app, rev} }) }()
	defer func() { cancel(); <-done }()
	waitApp(t, events, "a", hasData("a: 2\n"))
	waitApp(t, events, "b", isNotFound)
	if err := cat.Put(ctx, "c", []byte("c: 1\n")); err != nil {
		t.Fatal(err)
	}
	waitApp(t, events, "c", hasData("c: 1\n"))
	if lists != 2 {
		t.Fatalf("%d lists, want 2", lists)
	}
}
