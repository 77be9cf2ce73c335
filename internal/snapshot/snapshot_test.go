package snapshot

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// countingLLM records Close and fails loudly if used after it.
type countingLLM struct {
	llm.Echo
	closed atomic.Bool
	t      *testing.T
}

func (c *countingLLM) Generate(ctx context.Context, r llm.Request, f func(string)) (*llm.Response, error) {
	if c.closed.Load() {
		c.t.Error("client used after Close")
	}
	return c.Echo.Generate(ctx, r, f)
}
func (c *countingLLM) Close() error { c.closed.Store(true); return nil }

func withCountingLLMs(t *testing.T) {
	orig := newLLM
	newLLM = func(config.LLM) (llm.Client, error) { return &countingLLM{t: t}, nil }
	t.Cleanup(func() { newLLM = orig })
}

// build builds a snapshot on a SQLite database in the test's directory.
func build(t *testing.T, src string, prev *Snapshot) *Snapshot {
	t.Helper()
	s, err := Build(context.Background(), parse(t, src), prev, Options{DatabaseURL: "sqlite://" + filepath.Join(dbDir(t), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	if prev != nil {
		s.Version = prev.Version + 1
	} else {
		s.Version = 1
	}
	return s
}

var dbDirs sync.Map

func dbDir(t *testing.T) string {
	d, _ := dbDirs.LoadOrStore(t.Name(), t.TempDir())
	return d.(string)
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	doc, errs := config.Parse([]byte(src), func(string) (string, bool) { return "", false })
	if errs != nil {
		t.Fatal(errs)
	}
	return doc.Config
}

const cfgA = `llms: {a: {provider: echo}, b: {provider: echo, model: one}}
agents: {x: {llm: a}, y: {llm: b}}`

func TestBuildReusesUnchangedClients(t *testing.T) {
	withCountingLLMs(t)
	s1 := build(t, cfgA, nil)
	s2 := build(t, `llms: {a: {provider: echo}, b: {provider: echo, model: two}}
agents: {x: {llm: a, instruction: new}, y: {llm: b}}`, s1)
	if s1.Store != s2.Store {
		t.Error("unchanged database was reopened")
	}
	if s1.LLMs["a"] != s2.LLMs["a"] {
		t.Error("unchanged llm a was rebuilt")
	}
	if s1.LLMs["b"] == s2.LLMs["b"] {
		t.Error("changed llm b was reused")
	}
	if s2.Agents["x"].LLM != s2.LLMs["a"] || s2.Agents["x"].Instruction != "new" {
		t.Error("agent not wired to the snapshot's client")
	}
	if s1.Agents["x"] == s2.Agents["x"] || s1.Agents["y"] == s2.Agents["y"] {
		t.Error("a changed agent, or one whose LLM changed, was reused")
	}
	s3 := build(t, `llms: {a: {provider: echo}, b: {provider: echo, model: two}}
agents: {x: {llm: a, instruction: new}, y: {llm: b}, z: {llm: a}}`, s2)
	if s3.Agents["x"] != s2.Agents["x"] || s3.Agents["y"] != s2.Agents["y"] || s3.LLMs["b"] != s2.LLMs["b"] {
		t.Error("unchanged agents or clients were rebuilt")
	}
}

func TestRetiredClientClosesAfterLastReaderAndLastHolder(t *testing.T) {
	withCountingLLMs(t)
	var rt Runtime
	a := build(t, cfgA, nil)
	rt.Commit(a)
	held, release := rt.Acquire() // a slow request on snapshot A
	clientA := held.LLMs["a"].(*countingLLM)

	b := build(t, cfgA+"\nname: b", rt.Current()) // B shares both clients
	rt.Commit(b)
	c := build(t, `llms: {z: {provider: echo}}
agents: {x: {llm: z}}`, rt.Current()) // C drops them
	rt.Commit(c)
	<-b.Drained() // B had no readers
	if clientA.closed.Load() {
		t.Fatal("client closed while a reader of snapshot A still holds it")
	}
	if _, err := held.Agents["x"].Run(context.Background(), nil, "hi", nil); err != nil {
		t.Fatal(err)
	}
	release()
	<-a.Drained()
	if !clientA.closed.Load() {
		t.Fatal("retired client not closed after its last holder drained")
	}
	if c.Version != 3 || rt.Current() != c {
		t.Fatalf("version %d", c.Version)
	}
}

func TestAcquireDuringCommitsUnderRace(t *testing.T) {
	withCountingLLMs(t)
	var rt Runtime
	rt.Commit(build(t, cfgA, nil))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap, release := rt.Acquire()
				if _, err := snap.Agents["y"].Run(context.Background(), nil, "hi", nil); err != nil {
					t.Error(err)
				}
				release()
			}
		}()
	}
	for i := 0; i < 200; i++ {
		src := cfgA
		if i%2 == 0 {
			src = `llms: {a: {provider: echo}, b: {provider: echo, model: other}}
agents: {x: {llm: a}, y: {llm: b}}`
		}
		rt.Commit(build(t, src, rt.Current()))
	}
	close(stop)
	wg.Wait()
	rt.Close()
	if rt.Current() != nil {
		t.Fatal("closed runtime still has a snapshot")
	}
}

func TestDatabaseChangeOpensNewStoreAndClosesOldAfterReaders(t *testing.T) {
	var rt Runtime
	dir := t.TempDir()
	mk := func(db string, prev *Snapshot) *Snapshot {
		s, err := Build(context.Background(), parse(t, cfgA+"\ndatabase: {url: \"sqlite://"+filepath.Join(dir, db)+"\"}"), prev, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Version = 1
		if prev != nil {
			s.Version = prev.Version + 1
		}
		return s
	}
	one := mk("one.db", nil)
	rt.Commit(one)
	held, release := rt.Acquire()
	two := mk("two.db", rt.Current())
	if two.Store == one.Store {
		t.Fatal("changed database was reused")
	}
	rt.Commit(two)
	if err := held.Store.Ping(context.Background()); err != nil {
		t.Fatalf("old database closed under a reader: %v", err)
	}
	release()
	<-one.Drained()
	if err := one.Store.Ping(context.Background()); err == nil {
		t.Fatal("old database still open after its last reader")
	}
	if err := two.Store.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An unopenable database fails the build and leaves nothing behind.
	if _, err := Build(context.Background(), parse(t, cfgA+"\ndatabase: {url: \"sqlite:///proc/nope/x.db\"}"), rt.Current(), Options{}); err == nil {
		t.Fatal("want an error")
	}
	rt.Close()
}
