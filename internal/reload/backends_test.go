package reload

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/testsvc"
)

// backend is one configuration backend under test: the source Hector
// watches (through a proxy the test can cut), and direct access to the
// real server to write, delete, kill and restart.
type backend struct {
	src   source.Source
	put   func(t *testing.T, data string)
	del   func(t *testing.T)
	proxy *testsvc.Proxy // nil: no network to cut (SQLite)
	// kill and revive take the server down and bring it back; nil to skip.
	kill, revive func(t *testing.T)
	// extra runs the backend's own cases (compaction, index reset,
	// session expiry) after the common ones, on the same harness.
	extra func(t *testing.T, h *harness)
}

// until waits for an outcome that satisfies ok, skipping others, and
// returns it.
func (h *harness) until(what string, d time.Duration, ok func(Outcome) bool) Outcome {
	h.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case o := <-h.outcomes:
			if ok(o) {
				return o
			}
		case <-deadline:
			h.t.Fatalf("no outcome %s within %v", what, d)
		}
	}
}

func sourceError(o Outcome) bool {
	return o.Result == Rejected && len(o.Errors) > 0 && o.Errors[0].Path == "(source)"
}

func (h *harness) appliedInstruction(t *testing.T, want string, d time.Duration) Outcome {
	t.Helper()
	o := h.until("applying "+want, d, func(o Outcome) bool { return o.Result == Applied })
	if got := h.instruction(); got != want {
		t.Fatalf("instruction %q after %+v, want %q", got, o, want)
	}
	return o
}

// testBackend runs the behaviour every backend must have, in order, on one
// running reconciler: initial load, watch, invalid value, delete and
// re-create, a partition with a write during it, and a kill and restart.
func testBackend(t *testing.T, b backend) {
	b.put(t, doc("v1"))
	h := startSource(t, b.src)
	if got := h.instruction(); got != "v1" {
		t.Fatalf("initial load: instruction %q", got)
	}

	t.Log("a write reaches the running server through the watch")
	b.put(t, doc("v2"))
	h.appliedInstruction(t, "v2", 5*time.Second)

	t.Log("an invalid value is rejected; v2 keeps serving")
	b.put(t, "llms: {e: {provider: echo}}\nagents:\n  a: {llm: missing}\n")
	o := h.next()
	if o.Result != Rejected || len(o.Errors) == 0 || o.Errors[0].Path != "agents.a.llm" || o.Errors[0].Line != 3 {
		t.Fatalf("invalid value: %+v", o)
	}
	if h.instruction() != "v2" || h.rec.SourceStatus().Status != "ok" {
		t.Fatalf("after invalid value: instruction %q, status %+v", h.instruction(), h.rec.SourceStatus())
	}

	t.Log("the key is deleted: degraded, v2 keeps serving")
	b.del(t)
	o = h.until("reporting the deleted key", 5*time.Second, sourceError)
	if !strings.Contains(o.Errors[0].Message, "not found") {
		t.Fatalf("deleted key: %+v", o)
	}
	if st := h.rec.SourceStatus(); st.Status != "degraded" || h.instruction() != "v2" {
		t.Fatalf("after delete: status %+v, instruction %q", st, h.instruction())
	}

	t.Log("the key is re-created")
	b.put(t, doc("v3"))
	h.appliedInstruction(t, "v3", 5*time.Second)
	if st := h.rec.SourceStatus(); st.Status != "ok" {
		t.Fatalf("after re-create: status %+v", st)
	}

	if b.proxy == nil {
		return
	}
	t.Log("partition: a write made while Hector cannot reach the backend is applied within 1s of its return")
	b.proxy.Cut()
	h.until("reporting the partition", 15*time.Second, sourceError)
	if st := h.rec.SourceStatus(); st.Status != "degraded" || st.Error == "" {
		t.Fatalf("during partition: %+v", st)
	}
	b.put(t, doc("v4"))
	time.Sleep(300 * time.Millisecond) // let the reconnect backoff grow
	if h.instruction() != "v3" {
		t.Fatalf("applied during the partition: %q", h.instruction())
	}
	restored := time.Now()
	b.proxy.Restore()
	h.appliedInstruction(t, "v4", 5*time.Second)
	took := time.Since(restored)
	t.Logf("applied %v after the backend became reachable", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("change made during the outage applied %v after the backend returned, want <= 1s", took)
	}
	if st := h.rec.SourceStatus(); st.Status != "ok" {
		t.Fatalf("after partition: %+v", st)
	}

	t.Log("the backend is killed and restarted")
	b.kill(t)
	h.until("reporting the dead backend", 15*time.Second, sourceError)
	b.revive(t)
	b.put(t, doc("v5"))
	h.appliedInstruction(t, "v5", 10*time.Second)
	if st := h.rec.SourceStatus(); st.Status != "ok" {
		t.Fatalf("after restart: %+v", st)
	}
	if b.extra != nil {
		b.extra(t, h)
	}
}

func TestEtcdBackend(t *testing.T) {
	proc := testsvc.Etcd(t)
	proxy := testsvc.NewProxy(t, proc.Addr())
	key := "/hector/" + testsvc.RandomName("t") + "/config"
	direct := func(t *testing.T) *clientv3.Client {
		cli, err := clientv3.New(source.NewEtcdConfig([]string{proc.Addr()}))
		if err != nil {
			t.Fatal(err)
		}
		return cli
	}
	src := &source.Etcd{Key: key, Config: source.NewEtcdConfig([]string{proxy.Addr()})}
	t.Cleanup(func() { src.Close() })
	testBackend(t, backend{src: src, proxy: proxy, kill: stopProc(proc), revive: startProc(proc),
		put: func(t *testing.T, data string) {
			cli := direct(t)
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, key, data); err != nil {
				t.Fatal(err)
			}
		},
		del: func(t *testing.T) {
			cli := direct(t)
			defer cli.Close()
			if _, err := cli.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
		}})
}

func TestZooKeeperBackend(t *testing.T) {
	proc := testsvc.ZooKeeper(t)
	proxy := testsvc.NewProxy(t, proc.Addr())
	path := "/hector/" + testsvc.RandomName("t") + "/config"
	const session = 800 * time.Millisecond
	src := &source.ZooKeeper{Path: path, Servers: []string{proxy.Addr()}, SessionTimeout: session}
	t.Cleanup(func() { src.Close() })
	// Writes go straight to the server, through the source's own writer.
	// Writes go straight to the server, each on a fresh session (a
	// long-lived test client would have its own reconnects to wait out
	// after the server restarts).
	write := func(data string) error {
		direct := &source.ZooKeeper{Path: path, Servers: []string{proc.Addr()}, Timeout: 10 * time.Second}
		defer direct.Close()
		return direct.Write([]byte(data))
	}
	testBackend(t, backend{src: src, proxy: proxy, kill: stopProc(proc), revive: startProc(proc),
		put: func(t *testing.T, data string) {
			if err := write(data); err != nil {
				t.Fatal(err)
			}
		},
		del: func(t *testing.T) {
			conn, _, err := zk.Connect([]string{proc.Addr()}, 5*time.Second, zk.WithLogInfo(false))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.Delete(path, -1); err != nil {
				t.Fatal(err)
			}
		},
		extra: func(t *testing.T, h *harness) {
			t.Log("session expiry: partitioned longer than the session timeout, a new session reads and watches again")
			before := src.SessionID()
			proxy.Cut()
			h.until("reporting the partition", 15*time.Second, sourceError)
			time.Sleep(3 * session) // the server expires the session meanwhile
			if err := write(doc("v6")); err != nil {
				t.Fatal(err)
			}
			proxy.Restore()
			h.appliedInstruction(t, "v6", 5*time.Second)
			if after := src.SessionID(); after == before || after == 0 {
				t.Fatalf("session %x after expiry, was %x: no new session", after, before)
			}
			if err := write(doc("v7")); err != nil {
				t.Fatal(err)
			}
			h.appliedInstruction(t, "v7", 5*time.Second) // the watch was re-armed on the new session
		}})
}

func TestConsulBackend(t *testing.T) {
	proc := testsvc.Consul(t)
	proxy := testsvc.NewProxy(t, proc.Addr())
	key := "hector/" + testsvc.RandomName("t") + "/config"
	src := &source.Consul{Key: key, Addresses: []string{proxy.Addr()}}
	direct := &source.Consul{Key: key, Addresses: []string{proc.Addr()}, Timeout: 10 * time.Second}
	kv := func(t *testing.T) *api.KV {
		cl, err := api.NewClient(&api.Config{Address: proc.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		return cl.KV()
	}
	testBackend(t, backend{src: src, proxy: proxy, kill: stopProc(proc), revive: startProc(proc),
		put: func(t *testing.T, data string) {
			if err := direct.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
		},
		del: func(t *testing.T) {
			if _, err := kv(t).Delete(key, nil); err != nil {
				t.Fatal(err)
			}
		},
		extra: func(t *testing.T, h *harness) {
			t.Log("idle: blocking queries, not polling")
			q := src.Queries()
			time.Sleep(time.Second)
			if n := src.Queries() - q; n > 1 {
				t.Fatalf("%d queries in 1s of idling", n)
			}

			t.Log("index changes without a content change are not reloads")
			for i := range 10 { // new flags: the key's index moves, its value does not
				if _, err := kv(t).Put(&api.KVPair{Key: key, Value: []byte(doc("v5")), Flags: uint64(i + 1)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			h.quiet()
			if n := src.Queries() - q; n < 2 { // woken at least once (rapid changes coalesce)
				t.Fatalf("%d queries for 10 index changes", n)
			}

			t.Log("index reset: a rebuilt Consul starts its index again; the watch follows it")
			before := src.Index()
			proc.Stop()
			proc.Start() // -dev keeps nothing: the key is gone and the index is small
			h.until("reporting the missing key", 10*time.Second, sourceError)
			if err := direct.Write([]byte(doc("v6"))); err != nil {
				t.Fatal(err)
			}
			h.appliedInstruction(t, "v6", 10*time.Second)
			if after := src.Index(); after >= before {
				t.Fatalf("index %d after the rebuild, %d before: expected it to go backwards", after, before)
			}
			if err := direct.Write([]byte(doc("v7"))); err != nil {
				t.Fatal(err)
			}
			h.appliedInstruction(t, "v7", 5*time.Second)
		}})
}

func stopProc(p *testsvc.Proc) func(*testing.T)  { return func(*testing.T) { p.Stop() } }
func startProc(p *testsvc.Proc) func(*testing.T) { return func(*testing.T) { p.Start() } }

func TestPostgresBackend(t *testing.T) {
	dbURL := testsvc.Postgres(t)
	u, _ := url.Parse(dbURL)
	proxy := testsvc.NewProxy(t, u.Host)
	name := "production"
	src := &source.Database{URL: testsvc.WithHost(dbURL, proxy.Addr()), Document: name}
	t.Cleanup(func() { src.Close() })
	direct := &source.Database{URL: dbURL, Document: name, Timeout: 10 * time.Second}
	t.Cleanup(func() { direct.Close() })
	testBackend(t, backend{src: src, proxy: proxy,
		put: func(t *testing.T, data string) {
			if _, err := direct.Put(context.Background(), []byte(data), -1, "test"); err != nil {
				t.Fatal(err)
			}
		},
		del: func(t *testing.T) {
			if err := direct.Delete(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
		},
		// The machine's PostgreSQL is shared, so the test does not stop it;
		// it ends every session on the database, as a restart does.
		kill:   func(t *testing.T) { proxy.Cut(); testsvc.TerminateConnections(t, dbURL) },
		revive: func(t *testing.T) { proxy.Restore() },
		extra: func(t *testing.T, h *harness) {
			t.Log("writes are versioned: one based on an old version is refused and changes nothing")
			v := direct.Version()
			stale := &source.Database{URL: dbURL, Document: name}
			defer stale.Close()
			_, err := stale.Put(context.Background(), []byte(doc("stale")), v-1, "test")
			var conflict *source.ConflictError
			if !errors.As(err, &conflict) || conflict.Current != v {
				t.Fatalf("stale write: %v", err)
			}
			h.quiet()
			if h.instruction() != "v5" {
				t.Fatalf("instruction %q after a refused write", h.instruction())
			}
		}})
}

func TestSQLiteBackend(t *testing.T) {
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "config.db")
	src := &source.Database{URL: dbURL, Document: "production", PollInterval: 50 * time.Millisecond}
	t.Cleanup(func() { src.Close() })
	direct := &source.Database{URL: dbURL, Document: "production"}
	t.Cleanup(func() { direct.Close() })
	testBackend(t, backend{src: src,
		put: func(t *testing.T, data string) {
			if _, err := direct.Put(context.Background(), []byte(data), -1, "test"); err != nil {
				t.Fatal(err)
			}
		},
		del: func(t *testing.T) {
			if err := direct.Delete(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
		}})
}

// A base file with an etcd layer over it: a change in either layer is
// applied merged; a missing layer is a source error that keeps the running
// configuration, never a silent drop of the overrides.
func TestOverlayFileAndEtcd(t *testing.T) {
	proc := testsvc.Etcd(t)
	base := filepath.Join(t.TempDir(), "base.yaml")
	writeFile := func(s string) {
		if err := (&source.File{Path: base}).Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: base}\n")
	etcd := &source.Etcd{Key: "/hector/overlay", Config: source.NewEtcdConfig([]string{proc.Addr()})}
	t.Cleanup(func() { etcd.Close() })
	if err := etcd.Write([]byte("agents: {a: {instruction: prod}}\n")); err != nil {
		t.Fatal(err)
	}
	watched := &source.Etcd{Key: "/hector/overlay", Config: source.NewEtcdConfig([]string{proc.Addr()})}
	ov := &source.Overlay{Sources: []source.Source{&source.File{Path: base, Debounce: 20 * time.Millisecond}, watched}}
	t.Cleanup(func() { ov.Close() })
	h := startSource(t, ov)
	if h.instruction() != "prod" {
		t.Fatalf("merged instruction %q", h.instruction())
	}

	t.Log("the etcd layer changes")
	if err := etcd.Write([]byte("agents: {a: {instruction: prod2}}\n")); err != nil {
		t.Fatal(err)
	}
	h.appliedInstruction(t, "prod2", 5*time.Second)

	t.Log("the base file changes: its new agent appears, the override stays")
	writeFile("llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: base}\n  b: {llm: e}\n")
	o := h.until("applying the base change", 5*time.Second, func(o Outcome) bool { return o.Result == Applied })
	if got := o.Applied["agents"].Added; len(got) != 1 || got[0] != "b" || h.instruction() != "prod2" {
		t.Fatalf("after the base change: %+v, instruction %q", o.Applied, h.instruction())
	}

	t.Log("the override is deleted: degraded, nothing dropped")
	cli, err := clientv3.New(source.NewEtcdConfig([]string{proc.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Delete(context.Background(), "/hector/overlay"); err != nil {
		t.Fatal(err)
	}
	o = h.until("reporting the missing layer", 5*time.Second, sourceError)
	if !strings.Contains(o.Errors[0].Message, "etcd:/hector/overlay") || h.instruction() != "prod2" {
		t.Fatalf("missing layer: %+v, instruction %q", o, h.instruction())
	}
	if err := etcd.Write([]byte("agents: {a: {instruction: prod3}}\n")); err != nil {
		t.Fatal(err)
	}
	h.appliedInstruction(t, "prod3", 5*time.Second)
}
