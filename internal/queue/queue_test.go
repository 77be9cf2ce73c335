package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/testsvc"
)

// eachDatabase runs f on SQLite and on PostgreSQL.
func eachDatabase(t *testing.T, f func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testsvc.Postgres(t)) })
}

// sideEffect is an HTTP endpoint a tool calls; it counts calls by task.
type sideEffect struct {
	mu    sync.Mutex
	calls map[string]int
	keys  map[string]string // Idempotency-Key of the last call, by key
	srv   *httptest.Server
	// onCall, if set, runs during each call (before the answer).
	onCall func()
}

func newSideEffect(t *testing.T) *sideEffect {
	s := &sideEffect{calls: map[string]int{}, keys: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Query().Get("key")]++
		s.keys[r.URL.Query().Get("key")] = r.Header.Get("Idempotency-Key")
		onCall := s.onCall
		s.mu.Unlock()
		if onCall != nil {
			onCall()
		}
		fmt.Fprint(w, "done")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sideEffect) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

type env struct {
	t   *testing.T
	rt  *snapshot.Runtime
	llm *llmtest.Server
	fx  *sideEffect
	st  *store.Store
}

// newEnv builds a runtime whose agent "a" talks to a fake OpenAI server and
// may call the "effect" tool.
func newEnv(t *testing.T, dbURL string, queueYAML string) *env {
	return newEnvTool(t, dbURL, queueYAML, "")
}

// newEnvTool is newEnv with extra settings for the effect tool.
func newEnvTool(t *testing.T, dbURL, queueYAML, toolExtra string) *env {
	e := &env{t: t, rt: &snapshot.Runtime{}, llm: llmtest.NewOpenAI(t), fx: newSideEffect(t)}
	doc := fmt.Sprintf(`llms:
  m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}
agents:
  a: {llm: m, tools: [effect]}
tools:
  effect: {type: http, url: "%s/?key={key}", description: a side effect%s}
database: {url: %q}
queue: {%s}
`, e.llm.URL, e.fx.srv.URL, toolExtra, dbURL, queueYAML)
	d, errs := config.Parse([]byte(doc), func(string) (string, bool) { return "", false })
	if errs != nil {
		t.Fatal(errs)
	}
	snap, err := snapshot.Build(context.Background(), d.Config, nil, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.rt.Commit(snap)
	e.st = snap.Store
	t.Cleanup(e.rt.Close)
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs a queue on the env until the test ends.
func (e *env) start(instance string) *Queue { return e.startPolling(instance, 20*time.Millisecond) }

// startPolling is start with idle workers looking for work every poll.
func (e *env) startPolling(instance string, poll time.Duration) *Queue {
	q := &Queue{Runtime: e.rt, Log: quiet(), Instance: instance, PollInterval: poll}
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	e.t.Cleanup(func() { cancel(); q.Wait() })
	return q
}

func (e *env) enqueue(q *Queue, input string) *store.Task {
	e.t.Helper()
	t := &store.Task{ID: "t_" + input, Agent: "a", SessionID: "s_" + input, Input: input, MaxAttempts: q.MaxAttempts()}
	if err := e.st.CreateTask(context.Background(), t); err != nil {
		e.t.Fatal(err)
	}
	q.Wake()
	return t
}

// wait polls the task until ok or the timeout.
func (e *env) wait(id string, d time.Duration, ok func(*store.Task) bool) *store.Task {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		t, err := e.st.GetTask(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok(t) {
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s: %+v after %v", id, t, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func state(s store.TaskState) func(*store.Task) bool {
	return func(t *store.Task) bool { return t.State == s }
}

func TestTaskCompletesWithToolCallAndSession(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 2")
		e.llm.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "effect", Args: `{"key":"k1"}`}}}, llmtest.Reply{Text: "all done"})
		q := e.start("i1")
		task := e.enqueue(q, "go")
		done := e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
		if string(done.Result) == "" || done.Attempts != 1 || e.fx.count("k1") != 1 {
			t.Fatalf("%+v, %d effect calls", done, e.fx.count("k1"))
		}
		e.fx.mu.Lock()
		key := e.fx.keys["k1"]
		e.fx.mu.Unlock()
		if key != task.ID+"/c1" {
			t.Fatalf("Idempotency-Key %q, want %q", key, task.ID+"/c1")
		}
		steps, _ := e.st.Steps(context.Background(), task.ID)
		if len(steps) != 4 { // user, assistant with the call, tool result, answer
			t.Fatalf("%d steps: %+v", len(steps), steps)
		}
		hist, _ := e.st.History(context.Background(), task.SessionID)
		if len(hist) != 4 || hist[3].Content != "all done" {
			t.Fatalf("session history %+v", hist)
		}
	})
}

// A failing model is retried with growing, jittered waits; when the
// retries are used up the task fails onto the dead-letter list, and a
// requeue runs it again.
func TestRetryBackoffDeadLetterAndRequeue(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 1, max_retries: 2, initial_delay: 200ms, max_delay: 300ms")
		var times []time.Time
		var mu sync.Mutex
		e.llm.Respond = func(r llmtest.Request) llmtest.Reply {
			mu.Lock()
			defer mu.Unlock()
			times = append(times, time.Now())
			return llmtest.Reply{Status: 500}
		}
		q := e.start("i1")
		task := e.enqueue(q, "boom")
		failed := e.wait(task.ID, 10*time.Second, state(store.TaskFailed))
		if !failed.Dead || failed.Attempts != 3 || failed.Error == "" {
			t.Fatalf("%+v", failed)
		}
		mu.Lock()
		gaps := []time.Duration{times[1].Sub(times[0]), times[2].Sub(times[1])}
		mu.Unlock()
		// retry 1 waits 100–200ms, retry 2 150–300ms (200ms doubled, capped
		// at 300ms, jittered into its upper half); polling adds up to 20ms,
		// and a busy machine (the race detector, other packages' tests) some
		// more: 250ms of slack above. The lower bounds are the point.
		for i, bounds := range [][2]time.Duration{{100 * time.Millisecond, 450 * time.Millisecond}, {150 * time.Millisecond, 550 * time.Millisecond}} {
			if gaps[i] < bounds[0] || gaps[i] > bounds[1] {
				t.Errorf("wait before retry %d: %v, want %v to %v", i+1, gaps[i], bounds[0], bounds[1])
			}
		}
		dlq, _, err := e.st.ListTasks(context.Background(), store.TaskFilter{Dead: true})
		if err != nil || len(dlq) != 1 || dlq[0].ID != task.ID {
			t.Fatalf("dead letters %v %v", dlq, err)
		}
		e.llm.Respond = nil
		e.llm.Push(llmtest.Reply{Text: "fine now"})
		if _, err := e.st.RequeueTask(context.Background(), task.ID); err != nil {
			t.Fatal(err)
		}
		q.Wake()
		done := e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
		if done.Dead || done.Attempts != 1 {
			t.Fatalf("after requeue: %+v", done)
		}
	})
}

// A task whose worker died (no heartbeats) is taken over after the stale
// threshold and continues from its checkpoints: the tool call whose result
// was saved does not run again.
func TestStaleTaskTakenOverFromCheckpoints(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 1, stale_threshold: 1s")
		task := &store.Task{ID: "t_stale", Agent: "a", SessionID: "s_stale", Input: "go", MaxAttempts: 4}
		ctx := context.Background()
		if err := e.st.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		// A worker of a process that then died: claimed, called the model,
		// ran the tool, saved both, and stopped heartbeating.
		dead, err := e.st.ClaimTask(ctx, "dead/w1", time.Now().Add(-time.Second))
		if err != nil || dead == nil {
			t.Fatal(dead, err)
		}
		for _, m := range checkpoint("go", "c1", "once") {
			if err := e.st.SaveStep(ctx, task.ID, "dead/w1", 1, m); err != nil {
				t.Fatal(err)
			}
		}
		e.fx.mu.Lock()
		e.fx.calls["once"] = 1 // the dead worker's call
		e.fx.mu.Unlock()
		e.llm.Push(llmtest.Reply{Text: "finished by the new worker"})
		start := time.Now()
		e.start("i2")
		done := e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
		if took := time.Since(start); took < 500*time.Millisecond {
			t.Fatalf("taken over after %v, before the stale threshold", took)
		}
		if e.fx.count("once") != 1 || done.Attempts != 2 {
			t.Fatalf("effect ran %d times; task %+v", e.fx.count("once"), done)
		}
		if got := e.llm.Requests(); len(got) != 1 || got[0].LastTool != "done" {
			t.Fatalf("the new worker should have asked the model once, after the saved tool result: %+v", got)
		}
	})
}

// Cancel: a pending task at once; a running one as soon as its worker is
// told of the change (by the store's watch here, by the heartbeat at the
// latest).
func TestCancelPendingAndRunning(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 1, stale_threshold: 1s")
		e.llm.Respond = func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "slow", Delay: 20 * time.Second} }
		q := e.start("i1")
		running := e.enqueue(q, "first")
		e.wait(running.ID, 5*time.Second, state(store.TaskRunning))
		waiting := e.enqueue(q, "second") // the only worker is busy
		c, err := e.st.CancelTask(context.Background(), waiting.ID)
		if err != nil || c.State != store.TaskCanceled {
			t.Fatalf("cancel pending: %+v %v", c, err)
		}
		if c, err = e.st.CancelTask(context.Background(), running.ID); err != nil || !c.CancelRequested ||
			(c.State != store.TaskRunning && c.State != store.TaskCanceled) {
			t.Fatalf("cancel running: %+v %v", c, err)
		}
		start := time.Now()
		e.wait(running.ID, 3*time.Second, state(store.TaskCanceled))
		if d := time.Since(start); d > 300*time.Millisecond { // the heartbeat would take 333ms
			t.Errorf("the running task stopped %v after the cancel", d)
		}
		if _, err := e.st.CancelTask(context.Background(), running.ID); err == nil {
			t.Fatal("canceling a finished task succeeded")
		}
	})
}

// Two instances on one PostgreSQL share the queue; no task runs twice.
func TestTwoInstancesNoDoubleExecution(t *testing.T) {
	dbURL := testsvc.Postgres(t)
	a := newEnv(t, dbURL, "workers: 4")
	b := newEnv(t, dbURL, "workers: 4")
	var n atomic.Int64
	reply := func(r llmtest.Request) llmtest.Reply {
		if r.LastTool != "" {
			return llmtest.Reply{Text: "ok"}
		}
		n.Add(1)
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c", Name: "effect", Args: fmt.Sprintf(`{"key":%q}`, r.LastUser)}}}
	}
	a.llm.Respond, b.llm.Respond = reply, reply
	qa, qb := a.start("a"), b.start("b")
	const tasks = 60
	for i := range tasks {
		q := qa
		if i%2 == 1 {
			q = qb
		}
		a.enqueue(q, fmt.Sprintf("k%02d", i))
	}
	for i := range tasks {
		a.wait(fmt.Sprintf("t_k%02d", i), 30*time.Second, state(store.TaskCompleted))
	}
	for i := range tasks {
		key := fmt.Sprintf("k%02d", i)
		if c := a.fx.count(key) + b.fx.count(key); c != 1 {
			t.Errorf("%s: side effect ran %d times", key, c)
		}
	}
	if a.fx.count("k00")+a.fx.count("k01")+a.fx.count("k02") == 0 && b.fx.count("k00")+b.fx.count("k01") == 0 {
		t.Log("note: one instance did all the work")
	}
	if n.Load() != tasks {
		t.Errorf("%d first model calls for %d tasks", n.Load(), tasks)
	}
}

func TestBackoffBounds(t *testing.T) {
	s := Settings{InitialDelay: time.Second, MaxDelay: 5 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 10: 5 * time.Second} {
		for range 50 {
			if d := s.Backoff(attempt); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

// checkpoint is what a worker saves before dying after a tool call: the
// user message, the model's call and the tool's result.
func checkpoint(input, callID, key string) []llm.Message {
	return []llm.Message{
		{Role: llm.RoleUser, Content: input},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: callID, Name: "effect", Arguments: json.RawMessage(fmt.Sprintf(`{"key":%q}`, key))}}},
		{Role: llm.RoleTool, ToolCallID: callID, Name: "effect", Content: "done"},
	}
}

// At shutdown a running task goes back to the queue, its attempt not
// counted and its checkpoints kept; a task whose agent a reload removed
// fails naming the agent.
func TestShutdownHandsBackAndRemovedAgentFails(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 1")
		e.llm.Respond = func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "slow", Delay: 20 * time.Second} }
		q := &Queue{Runtime: e.rt, Log: quiet(), Instance: "i1", PollInterval: 20 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		q.Start(ctx)
		task := e.enqueue(q, "long")
		e.wait(task.ID, 5*time.Second, state(store.TaskRunning))
		for len(e.llm.Requests()) == 0 { // the model is working on it
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		q.Wait()
		back, _ := e.st.GetTask(context.Background(), task.ID)
		steps, _ := e.st.Steps(context.Background(), task.ID)
		if back.State != store.TaskPending || back.Attempts != 0 || back.LeaseOwner != "" || len(steps) != 1 {
			t.Fatalf("after shutdown: %+v, %d steps", back, len(steps))
		}

		gone := &store.Task{ID: "t_gone", Agent: "gone", SessionID: "s_gone", Input: "x", MaxAttempts: 3}
		if err := e.st.CreateTask(context.Background(), gone); err != nil {
			t.Fatal(err)
		}
		e.llm.Respond = nil
		e.start("i2")
		failed := e.wait(gone.ID, 5*time.Second, state(store.TaskFailed))
		if failed.Attempts != 1 || !failed.Dead || !strings.Contains(failed.Error, `agent "gone" is not in the configuration`) {
			t.Fatalf("%+v", failed)
		}
		e.wait(task.ID, 5*time.Second, state(store.TaskCompleted)) // the handed-back task runs on
	})
}

// queue.workers applies live: workers are added at once and surplus
// workers stop between tasks.
func TestWorkersResizeLive(t *testing.T) {
	e := newEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db"), "workers: 1")
	q := e.start("i1")
	running := func() int { q.mu.Lock(); defer q.mu.Unlock(); return q.running }
	if running() != 1 {
		t.Fatalf("%d workers", running())
	}
	q.Apply(config.Queue{Workers: 5})
	if running() != 5 || q.Settings().Workers != 5 {
		t.Fatalf("%d workers after growing", running())
	}
	q.Apply(config.Queue{Workers: 2})
	deadline := time.Now().Add(5 * time.Second)
	for running() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers after shrinking to 2", running())
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.Override = func(s Settings) Settings { s.Workers = 3; return s } // a --queue-workers flag wins
	q.Apply(config.Queue{Workers: 8})
	if running() != 3 {
		t.Fatalf("%d workers with the override", running())
	}
}

// A call to a tool that needs approval pauses the task in input_required
// with the call and prompt; approving runs it once, rejecting gives the
// model the reason instead, and neither counts as an attempt.
func TestApprovalPausesApproveAndReject(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnvTool(t, dbURL, "workers: 2", ", require_approval: true, approval_prompt: 'Spend money?'")
		e.llm.Respond = func(r llmtest.Request) llmtest.Reply {
			if r.LastTool != "" {
				return llmtest.Reply{Text: "model saw: " + r.LastTool}
			}
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "effect", Args: fmt.Sprintf(`{"key":%q}`, r.LastUser)}}}
		}
		q := e.start("i1")
		ctx := context.Background()
		for _, c := range []struct {
			input    string
			approved bool
		}{{"yes", true}, {"no", false}} {
			task := e.enqueue(q, c.input)
			waiting := e.wait(task.ID, 5*time.Second, state(store.TaskInputRequired))
			a := waiting.Approval
			if a == nil || a.Tool != "effect" || a.CallID != "c1" || a.Prompt != "Spend money?" || string(a.Arguments) != fmt.Sprintf(`{"key":%q}`, c.input) ||
				waiting.Attempts != 0 || e.fx.count(c.input) != 0 {
				t.Fatalf("waiting: %+v approval %+v", waiting, a)
			}
			if _, err := e.st.DecideTask(ctx, task.ID, "c9", store.Decision{Approved: true}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("deciding another call: %v", err)
			}
			if _, err := e.st.DecideTask(ctx, task.ID, "c1", store.Decision{Approved: c.approved, Reason: "over budget", By: "ops"}); err != nil {
				t.Fatal(err)
			}
			q.Wake()
			done := e.wait(task.ID, 5*time.Second, state(store.TaskCompleted))
			var res struct{ Reply string }
			_ = json.Unmarshal(done.Result, &res)
			if c.approved && (e.fx.count("yes") != 1 || res.Reply != "model saw: done") {
				t.Fatalf("approved: %d calls, reply %q", e.fx.count("yes"), res.Reply)
			}
			if !c.approved && (e.fx.count("no") != 0 || !strings.Contains(res.Reply, "rejected this call: over budget")) {
				t.Fatalf("rejected: %d calls, reply %q", e.fx.count("no"), res.Reply)
			}
			if d := done.Decisions["c1"]; d.By != "ops" || d.Approved != c.approved || done.Attempts != 1 || done.Approval != nil {
				t.Fatalf("decision %+v, task %+v", d, done)
			}
			if _, err := e.st.DecideTask(ctx, task.ID, "", store.Decision{Approved: true}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("deciding a finished task: %v", err)
			}
		}
		// A waiting task can be canceled.
		task := e.enqueue(q, "maybe")
		e.wait(task.ID, 5*time.Second, state(store.TaskInputRequired))
		if c, err := e.st.CancelTask(ctx, task.ID); err != nil || c.State != store.TaskCanceled {
			t.Fatalf("cancel a waiting task: %+v %v", c, err)
		}
	})
}

// A reload reaches a running task at its next step: the model call after
// a tool call uses the agent of the configuration committed during it.
func TestReloadReachesTaskAtNextStep(t *testing.T) {
	e := newEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db"), "workers: 1")
	e.llm.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastTool != "" {
			return llmtest.Reply{Text: "system was: " + r.System}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "effect", Args: `{"key":"k"}`}}}
	}
	cur, release := e.rt.Acquire()
	next := *cur.Config
	release()
	next.Agents = map[string]config.Agent{"a": {LLM: "m", Tools: []string{"effect"}, Instruction: "after the reload", MaxIterations: 10}}
	e.fx.mu.Lock()
	e.fx.onCall = func() { // the reload lands while the tool runs
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("reload panicked: %v", r)
			}
		}()
		e.reload(&next)
	}
	e.fx.mu.Unlock()
	q := e.start("i1")
	task := e.enqueue(q, "go")
	done := e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
	var res struct{ Reply string }
	_ = json.Unmarshal(done.Result, &res)
	reqs := e.llm.Requests()
	if res.Reply != "system was: after the reload" || len(reqs) != 2 || reqs[0].System != "" {
		t.Fatalf("reply %q; requests %+v", res.Reply, reqs)
	}
}

// On PostgreSQL an idle instance hears of a task created elsewhere at
// once, not at its next poll.
func TestNotificationWakesOtherInstance(t *testing.T) {
	dbURL := testsvc.Postgres(t)
	e := newEnv(t, dbURL, "workers: 1")
	q := &Queue{Runtime: e.rt, Log: quiet(), Instance: "idle", PollInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	t.Cleanup(func() { cancel(); q.Wait() })
	time.Sleep(300 * time.Millisecond) // workers idle, listener connected
	other := newEnv(t, dbURL, "workers: 1")
	start := time.Now()
	task := &store.Task{ID: "t_elsewhere", Agent: "a", SessionID: "s_elsewhere", Input: "hi", MaxAttempts: 1}
	if err := other.st.CreateTask(context.Background(), task); err != nil { // no Wake here
		t.Fatal(err)
	}
	e.wait(task.ID, 5*time.Second, state(store.TaskCompleted))
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("picked up after %v", took)
	} else {
		t.Logf("picked up and completed %v after another instance created it", took.Round(time.Millisecond))
	}
}

// queue.retention deletes finished tasks and their steps once they are
// old enough, and keeps everything else.
func TestRetentionPurgesFinishedTasks(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 1, retention: 1s")
		q := e.start("i1")
		done := e.enqueue(q, "old")
		e.wait(done.ID, 5*time.Second, state(store.TaskCompleted))
		waiting := &store.Task{ID: "t_waiting", Agent: "a", SessionID: "s_w", Input: "x", MaxAttempts: 1}
		if err := e.st.CreateWaitingTask(context.Background(), waiting, []llm.Message{{Role: llm.RoleUser, Content: "x"}},
			store.Approval{CallID: "c", Tool: "effect"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := e.st.GetTask(context.Background(), done.ID)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("finished task not purged: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if steps, _ := e.st.Steps(context.Background(), done.ID); len(steps) != 0 {
			t.Fatalf("%d steps left", len(steps))
		}
		if w, err := e.st.GetTask(context.Background(), waiting.ID); err != nil || w.State != store.TaskInputRequired {
			t.Fatalf("a waiting task was purged: %+v %v", w, err)
		}
		if hist, _ := e.st.History(context.Background(), done.SessionID); len(hist) != 2 {
			t.Fatalf("the session lost its messages: %d", len(hist))
		}
	})
}

// TestIdleWorkersGoQuiet: once the work is done, idle workers look for
// more only at their poll interval, however many wake-ups there were
// (passing every wake-up on kept them claiming in a loop: two cores
// busy on an idle server).
func TestIdleWorkersGoQuiet(t *testing.T) {
	e := newEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "q.db"), "workers: 4")
	q := e.startPolling("i1", time.Second) // so that wake-ups, not polls, would show
	for i := range 20 {
		e.enqueue(q, fmt.Sprint("task-", i))
	}
	e.wait("t_task-19", 10*time.Second, state(store.TaskCompleted))
	time.Sleep(100 * time.Millisecond)
	before := q.claims.Load()
	time.Sleep(time.Second)
	// 4 workers polling every second: about 4 looks.
	if n := q.claims.Load() - before; n > 12 {
		t.Fatalf("%d claim attempts in a second of idleness", n)
	}
}

// tenants maps app names to runtimes for a queue's Tenants.
type tenants map[string]*snapshot.Runtime

func (m tenants) Runtime(tenant string) *snapshot.Runtime { return m[tenant] }

// A task runs on its tenant's agents: an app's task on the app's
// configuration, sharing the main store. A task of an app that no longer
// exists fails naming it; one of an app without a valid configuration
// waits for a retry.
func TestTasksRunOnTheirTenantsAgents(t *testing.T) {
	e := newEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db"), "workers: 1, max_retries: 1, initial_delay: 1h")
	d, errs := config.Parse([]byte(fmt.Sprintf("llms: {m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}}\nagents: {a: {llm: m, instruction: the shop's agent}}\n", e.llm.URL)),
		func(string) (string, bool) { return "", false })
	if errs != nil {
		t.Fatal(errs)
	}
	snap, err := snapshot.Build(context.Background(), d.Config, nil, snapshot.Options{Store: e.st, App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	snap.Version = 7
	shop := &snapshot.Runtime{}
	shop.Commit(snap)
	t.Cleanup(shop.Close)
	q := &Queue{Runtime: e.rt, Tenants: tenants{"shop": shop, "broken": {}}, Log: quiet(), Instance: "i1", PollInterval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	t.Cleanup(func() { cancel(); q.Wait() })
	create := func(id, tenant string) {
		t.Helper()
		task := &store.Task{ID: id, Agent: "a", SessionID: "s_" + id, Input: "hi", MaxAttempts: q.MaxAttempts(), Owner: store.Owner{Tenant: tenant, Principal: "p"}}
		if err := e.st.CreateTask(context.Background(), task); err != nil {
			t.Fatal(err)
		}
		q.Wake()
	}
	create("t_shop", "shop")
	done := e.wait("t_shop", 5*time.Second, state(store.TaskCompleted))
	if reqs := e.llm.Requests(); len(reqs) != 1 || reqs[0].System != "the shop's agent" {
		t.Fatalf("the shop's task reached the model as %+v", reqs)
	}
	_ = done
	if msgs, err := e.st.Messages(context.Background(), "s_t_shop"); err != nil || len(msgs) == 0 || msgs[0].ConfigVersion != 7 {
		t.Errorf("the shop's turn is not stored as the app's version 7: %+v %v", msgs, err)
	}
	create("t_gone", "gone")
	if failed := e.wait("t_gone", 5*time.Second, state(store.TaskFailed)); !failed.Dead || !strings.Contains(failed.Error, `app "gone" does not exist`) {
		t.Errorf("a task of a deleted app: %+v", failed)
	}
	create("t_broken", "broken")
	waiting := e.wait("t_broken", 5*time.Second, func(t *store.Task) bool { return t.Attempts == 1 && t.State == store.TaskPending })
	if !strings.Contains(waiting.Error, `app "broken" has no valid configuration`) {
		t.Errorf("a task of an app without a valid configuration: %+v", waiting)
	}
}
