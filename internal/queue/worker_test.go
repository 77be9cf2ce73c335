package queue

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Two tasks on one session, run by two workers at once, take turns: the
// second model call sees the first turn in its history.
func TestTasksOnOneSessionTakeTurns(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, "workers: 2")
		e.llm.Respond = func(r llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Text: "reply to: " + r.LastUser, Delay: 200 * time.Millisecond}
		}
		q := e.start("i1")
		var tasks []*store.Task
		for _, in := range []string{"one", "two"} {
			task := &store.Task{ID: "t_" + in, Agent: "a", SessionID: "shared", Input: in, MaxAttempts: q.MaxAttempts()}
			if err := e.st.CreateTask(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, task)
		}
		q.Wake()
		for _, task := range tasks {
			e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
		}
		reqs := e.llm.Requests()
		if len(reqs) != 2 || reqs[0].NumMessage+2 != reqs[1].NumMessage {
			t.Fatalf("the turns interleaved: requests %+v", reqs)
		}
		hist, _ := e.st.History(context.Background(), "shared")
		if len(hist) != 4 || hist[1].Content != "reply to: "+hist[0].Content || hist[3].Content != "reply to: "+hist[2].Content {
			t.Fatalf("session history %+v", hist)
		}
	})
}

// A running task holds no snapshot between steps: the configuration it
// was claimed under drains (its LLM clients close) while the task is
// still on a later step.
func TestClaimDoesNotPinSnapshot(t *testing.T) {
	e := newEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db"), "workers: 1")
	e.llm.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "effect", Args: `{"key":"k"}`}}},
		llmtest.Reply{Text: "done", Delay: 2 * time.Second})
	claimed := e.rt.Current()
	e.fx.mu.Lock()
	e.fx.onCall = func() { e.reload(claimed.Config) } // a reload while the tool runs, in step 1
	e.fx.mu.Unlock()
	q := e.start("i1")
	task := e.enqueue(q, "go")
	select {
	case <-claimed.Drained():
	case <-time.After(5 * time.Second):
		t.Fatal("the claim-time snapshot never drained while its task ran")
	}
	if got, _ := e.st.GetTask(context.Background(), task.ID); got.State != store.TaskRunning {
		t.Fatalf("task is %s when the snapshot drained; want it still running", got.State)
	}
	e.wait(task.ID, 10*time.Second, state(store.TaskCompleted))
}

// reload builds cfg on the current snapshot and commits it as the next
// version, as the reconciler would.
func (e *env) reload(cfg *config.Config) {
	prev := e.rt.Current()
	snap, err := snapshot.Build(context.Background(), cfg, prev, snapshot.Options{})
	if err != nil {
		e.t.Error(err)
		return
	}
	snap.Version = prev.Version + 1
	e.rt.Commit(snap)
}
