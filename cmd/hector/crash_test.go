package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// effects is the outside world a tool changes. It applies each
// Idempotency-Key once, as a payment API would, and counts deliveries.
type effects struct {
	mu         sync.Mutex
	applied    map[string]int             // by task key: effects applied
	keys       map[string]map[string]bool // by task key: distinct idempotency keys seen
	deliveries int
}

// newWorld starts an effects server for the test.
func newWorld(t *testing.T) (*effects, *httptest.Server) {
	fx := &effects{applied: map[string]int{}, keys: map[string]map[string]bool{}}
	world := httptest.NewServer(fx)
	t.Cleanup(world.Close)
	return fx, world
}

func (e *effects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	task, idem := r.URL.Query().Get("key"), r.Header.Get("Idempotency-Key")
	e.deliveries++
	if e.keys[task] == nil {
		e.keys[task] = map[string]bool{}
	}
	if !e.keys[task][idem] {
		e.keys[task][idem] = true
		e.applied[task]++
	}
	fmt.Fprint(w, "applied")
}

// Crash test: 200 tasks with a side-effecting tool call each; the server
// is killed with SIGKILL at random moments five times and restarted. Every
// task completes, and every task's tool call took effect exactly once.
func TestCrashRecovery(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			url := "sqlite://" + filepath.Join(t.TempDir(), "crash.db")
			if db == "postgres" {
				url = testsvc.Postgres(t)
			}
			crashRun(t, url)
		})
	}
}

func crashRun(t *testing.T, dbURL string) {
	bin := buildBinary(t)
	fx, world := newWorld(t)
	model := llmtest.NewOpenAI(t)
	model.Respond = func(r llmtest.Request) llmtest.Reply {
		delay := time.Duration(20+rand.IntN(60)) * time.Millisecond
		if r.LastTool != "" {
			return llmtest.Reply{Text: "done", Delay: delay}
		}
		return llmtest.Reply{Delay: delay, ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "effect", Args: fmt.Sprintf(`{"key":%q}`, r.LastUser)}}}
	}
	cfg := writeConfig(t, fmt.Sprintf(`llms:
  m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}
agents:
  a: {llm: m, tools: [effect]}
tools:
  effect: {type: http, url: "%s/?key={key}", description: changes the world}
server: {port: 0}
`, model.URL, world.URL))
	args := []string{"--config", cfg, "--database", dbURL, "--queue-workers", "4", "--queue-stale-threshold", "1s",
		"--queue-initial-delay", "50ms", "--queue-max-retries", "10"}
	p := startServe(t, bin, args...)
	const tasks = 200
	for i := range tasks {
		if code, body := httpDo(t, "POST", "http://"+p.addr+"/v1/agents/a/tasks", fmt.Sprintf(`{"message":"k%03d"}`, i)); code != 202 {
			t.Fatalf("enqueue %d: %d %v", i, code, body)
		}
	}
	midRun := 0 // kills that found work in progress
	for kill := range 5 {
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond)
		if _, page := httpDo(t, "GET", "http://"+p.addr+"/v1/tasks?status=completed&limit=500", ""); len(page["tasks"].([]any)) < tasks {
			midRun++
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p = startServe(t, bin, args...)
		_, page := httpDo(t, "GET", "http://"+p.addr+"/v1/tasks?status=completed&limit=500", "")
		t.Logf("kill %d: %d tasks completed so far", kill+1, len(page["tasks"].([]any)))
	}
	if midRun < 3 {
		t.Fatalf("only %d of 5 kills landed while tasks were running: the test did not test crashes", midRun)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, page := httpDo(t, "GET", "http://"+p.addr+"/v1/tasks?status=completed&limit=500", "")
		n := len(page["tasks"].([]any))
		if n == tasks {
			break
		}
		if time.Now().After(deadline) {
			_, failed := httpDo(t, "GET", "http://"+p.addr+"/v1/tasks?status=failed&limit=5", "")
			t.Fatalf("%d of %d tasks completed after the kills; failed: %v", n, tasks, failed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for i := range tasks {
		key := fmt.Sprintf("k%03d", i)
		if fx.applied[key] != 1 || len(fx.keys[key]) != 1 {
			t.Errorf("%s: effect applied %d times under %d idempotency keys", key, fx.applied[key], len(fx.keys[key]))
		}
	}
	t.Logf("%d tasks completed across 5 SIGKILLs; %d tool deliveries for %d effects (%d redelivered after a kill, applied once by key)",
		tasks, fx.deliveries, tasks, fx.deliveries-tasks)
}
