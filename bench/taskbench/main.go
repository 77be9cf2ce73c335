// Command taskbench measures the durable task queue (bench/README.md):
// completed tasks per second with an instant fake LLM, on SQLite and on
// PostgreSQL, with one and with two instances sharing the database, and
// the latency of enqueueing a task while the queue is busy.
//
// Everything runs in this process on loopback: the fake OpenAI-compatible
// LLM (the real SDK client talks to it over HTTP), and one or two
// "instances", each its own runtime with its own connection pool and
// workers. PostgreSQL is the local server (a fresh database per run).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/queue"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/testsvc"
)

type instance struct {
	rt *snapshot.Runtime
	q  *queue.Queue
}

func startInstance(dbURL, llmURL string, workers int, name string) (*instance, func(), error) {
	doc := fmt.Sprintf("llms: {m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}}\n"+
		"agents: {a: {llm: m}}\ndatabase: {url: %q}\nqueue: {workers: %d}\n", llmURL, dbURL, workers)
	d, errs := config.Parse([]byte(doc), func(string) (string, bool) { return "", false })
	if errs != nil {
		return nil, nil, errs
	}
	snap, err := snapshot.Build(context.Background(), d.Config, nil, snapshot.Options{})
	if err != nil {
		return nil, nil, err
	}
	in := &instance{rt: &snapshot.Runtime{}}
	in.rt.Commit(snap)
	in.q = &queue.Queue{Runtime: in.rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Instance: name, PollInterval: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	in.q.Start(ctx)
	return in, func() { cancel(); in.q.Wait(); in.rt.Close() }, nil
}

func (in *instance) store() *store.Store {
	snap, release := in.rt.Acquire()
	defer release()
	return snap.Store
}

type result struct {
	tasksPerSec    float64
	enqP50, enqP99 time.Duration
}

// run enqueues n tasks from 4 goroutines, round-robin over the instances,
// and waits until all are completed.
func run(dbURL, llmURL string, instances, workers, n int) (result, error) {
	var ins []*instance
	for i := range instances {
		in, stop, err := startInstance(dbURL, llmURL, workers, fmt.Sprintf("i%d", i))
		if err != nil {
			return result{}, err
		}
		defer stop()
		ins = append(ins, in)
	}
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				in := ins[i%len(ins)]
				t := &store.Task{ID: fmt.Sprintf("t%06d", i), Agent: "a", SessionID: fmt.Sprintf("s%06d", i), Input: "go", MaxAttempts: 1}
				t0 := time.Now()
				if err := in.store().CreateTask(context.Background(), t); err != nil {
					errc <- err
					return
				}
				in.q.Wake()
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return result{}, err
	default:
	}
	st := ins[0].store()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n2, err := st.CountTasks(context.Background(), store.TaskCompleted)
		if err != nil {
			return result{}, err
		}
		if n2 == n {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%d of %d completed after 5 minutes", n2, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return result{tasksPerSec: float64(n) / elapsed.Seconds(), enqP50: lat[len(lat)/2], enqP99: lat[len(lat)*99/100]}, nil
}

func main() {
	n := flag.Int("tasks", 2000, "tasks per run")
	workers := flag.Int("workers", 4, "workers per instance")
	only := flag.String("databases", "sqlite,postgres", "comma-separated: sqlite, postgres")
	flag.Parse()
	t := &testsvc.Program{}
	defer t.Close()
	llm := llmtest.NewInstant()
	defer llm.Close()
	fmt.Printf("durable tasks, instant fake LLM (real OpenAI SDK over loopback), %d tasks per run, %d workers per instance, 4 enqueuers\n", *n, *workers)
	fmt.Printf("%-10s %9s %10s %12s %12s\n", "database", "instances", "tasks/s", "enqueue p50", "enqueue p99")
	for _, db := range strings.Split(*only, ",") {
		for _, instances := range []int{1, 2} {
			var url string
			switch db {
			case "sqlite":
				url = "sqlite://" + filepath.Join(t.TempDir(), "tasks.db")
			case "postgres":
				url = testsvc.Postgres(t)
			default:
				t.Fatalf("unknown database %q", db)
			}
			r, err := run(url, llm.URL, instances, *workers, *n)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("%-10s %9d %10.0f %9.2f ms %9.2f ms\n", db, instances, r.tasksPerSec,
				float64(r.enqP50.Microseconds())/1000, float64(r.enqP99.Microseconds())/1000)
		}
	}
}
