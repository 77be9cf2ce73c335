// Command backendbench measures Hector's configuration backends against
// real servers on loopback and prints the figures in bench/README.md:
//
//	latency   write-to-applied latency per backend, p50/p99 over -writes writes
//	converge  time until three watchers (each with its own connection) have
//	          all applied a write, over -converge writes
//	idle      CPU time and heap of one idle watch over -idle
//
// It starts etcd, ZooKeeper and Consul as child processes (as the tests do,
// through internal/testsvc; scripts/test installs them) and uses a fresh
// database on the local PostgreSQL. Every process it starts is stopped by
// PID when it ends. Each write goes through the whole reconciler: read,
// parse, validate, plan, build the snapshot, commit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/testsvc"
)

// backend makes sources that watch one document, and writes it.
type backend struct {
	name   string
	note   string
	source func() source.Source
	write  func(data []byte) error
}

func backends(t *testsvc.Program, only string, sqlitePoll time.Duration) []backend {
	var out []backend
	want := func(name string) bool { return only == "" || strings.Contains(","+only+",", ","+name+",") }
	if want("file") {
		path := filepath.Join(t.TempDir(), "hector.yaml")
		w := &source.File{Path: path}
		out = append(out, backend{name: "file", note: "includes the 50 ms debounce",
			source: func() source.Source { return &source.File{Path: path, Debounce: source.DefaultDebounce} }, write: w.Write})
	}
	if want("etcd") {
		p := testsvc.Etcd(t)
		w := &source.Etcd{Key: "/hector/bench", Config: source.NewEtcdConfig([]string{p.Addr()})}
		t.Cleanup(func() { w.Close() })
		out = append(out, backend{name: "etcd", source: func() source.Source {
			return &source.Etcd{Key: "/hector/bench", Config: source.NewEtcdConfig([]string{p.Addr()})}
		}, write: w.Write})
	}
	if want("consul") {
		p := testsvc.Consul(t)
		w := &source.Consul{Key: "hector/bench", Addresses: []string{p.Addr()}}
		out = append(out, backend{name: "consul", source: func() source.Source {
			return &source.Consul{Key: "hector/bench", Addresses: []string{p.Addr()}}
		}, write: w.Write})
	}
	if want("zookeeper") {
		p := testsvc.ZooKeeper(t)
		w := &source.ZooKeeper{Path: "/hector/bench", Servers: []string{p.Addr()}}
		t.Cleanup(func() { w.Close() })
		out = append(out, backend{name: "zookeeper", source: func() source.Source {
			return &source.ZooKeeper{Path: "/hector/bench", Servers: []string{p.Addr()}}
		}, write: w.Write})
	}
	if want("postgres") {
		u := testsvc.Postgres(t)
		w := &source.Database{URL: u, Document: "bench"}
		t.Cleanup(func() { w.Close() })
		out = append(out, backend{name: "postgres", note: "LISTEN/NOTIFY",
			source: func() source.Source { return &source.Database{URL: u, Document: "bench"} },
			write:  func(d []byte) error { _, err := w.Put(context.Background(), d, -1, "bench"); return err }})
	}
	if want("sqlite") {
		u := "sqlite://" + filepath.Join(t.TempDir(), "config.db")
		w := &source.Database{URL: u, Document: "bench"}
		t.Cleanup(func() { w.Close() })
		out = append(out, backend{name: "sqlite", note: fmt.Sprintf("polled every %v", sqlitePoll),
			source: func() source.Source { return &source.Database{URL: u, Document: "bench", PollInterval: sqlitePoll} },
			write:  func(d []byte) error { _, err := w.Put(context.Background(), d, -1, "bench"); return err }})
	}
	return out
}

func doc(i int) []byte {
	return fmt.Appendf(nil, "llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: \"version %d\"}\n", i)
}

// watcher is one reconciler watching a source, reporting applied hashes.
type watcher struct {
	applied chan string
	stop    func()
}

func watch(t *testsvc.Program, src source.Source) *watcher {
	rt := &snapshot.Runtime{}
	w := &watcher{applied: make(chan string, 1000)}
	rec := &reload.Reconciler{Runtime: rt, Source: src, Env: func(string) (string, bool) { return "", false },
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		BuildOptions: snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "h.db")}}
	rec.AddListener(func(o reload.Outcome) {
		if o.Result == reload.Applied {
			w.applied <- o.Hash
		}
	})
	if _, err := rec.Start(context.Background()); err != nil {
		t.Fatalf("%s: %v", src.Name(), err)
	}
	<-w.applied
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	w.stop = func() {
		cancel()
		<-done
		rt.Close()
		if c, ok := src.(io.Closer); ok {
			c.Close()
		}
	}
	return w
}

func (w *watcher) wait(t *testsvc.Program, hash string) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case h := <-w.applied:
			if h == hash {
				return
			}
		case <-timeout:
			t.Fatalf("write not applied within 10s")
		}
	}
}

var seq = 1

// writeAndWait writes a new document and returns how long until every
// watcher applied it.
func writeAndWait(t *testsvc.Program, b backend, ws []*watcher) time.Duration {
	seq++
	data := doc(seq)
	hash := config.Hash(data)
	start := time.Now()
	if err := b.write(data); err != nil {
		t.Fatalf("%s write: %v", b.name, err)
	}
	for _, w := range ws {
		w.wait(t, hash)
	}
	return time.Since(start)
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func main() {
	writes := flag.Int("writes", 200, "writes per backend for the latency suite")
	converge := flag.Int("converge", 50, "writes per backend for the convergence suite")
	idle := flag.Duration("idle", 10*time.Second, "how long to measure an idle watch")
	only := flag.String("backends", "", "comma-separated subset: file,etcd,consul,zookeeper,postgres,sqlite")
	sqlitePoll := flag.Duration("sqlite-poll", 100*time.Millisecond, "the SQLite source's poll interval")
	flag.Parse()

	t := &testsvc.Program{}
	defer t.Close()
	bs := backends(t, *only, *sqlitePoll)
	fmt.Printf("write-to-applied: one watcher, %d sequential writes; three watchers, %d writes; idle watch over %v\n", *writes, *converge, *idle)
	fmt.Printf("%-10s %10s %10s %12s %12s %12s %12s  %s\n", "backend", "p50", "p99", "3 inst. p50", "3 inst. p99", "idle CPU", "watch heap", "")
	for _, b := range bs {
		if err := b.write(doc(1)); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		before := heap()
		w := watch(t, b.source())
		var lat []time.Duration
		for range *writes {
			lat = append(lat, writeAndWait(t, b, []*watcher{w}))
		}
		// Idle: nothing changes; what does keeping the watch cost?
		time.Sleep(500 * time.Millisecond)
		heapWatch := int64(heap()) - int64(before)
		cpu0 := cpuTime()
		time.Sleep(*idle)
		cpu := cpuTime() - cpu0
		w.stop()

		ws := []*watcher{watch(t, b.source()), watch(t, b.source()), watch(t, b.source())}
		var conv []time.Duration
		for range *converge {
			conv = append(conv, writeAndWait(t, b, ws))
		}
		for _, w := range ws {
			w.stop()
		}
		fmt.Printf("%-10s %10s %10s %12s %12s %9.2f ms %9.0f KiB  %s\n", b.name, ms(pct(lat, 0.5)), ms(pct(lat, 0.99)),
			ms(pct(conv, 0.5)), ms(pct(conv, 0.99)), float64(cpu.Microseconds())/1000, float64(heapWatch)/1024, b.note)
	}
	fmt.Printf("idle CPU is this process's user+system time over %v with one watch open and nothing changing\n", *idle)
}
