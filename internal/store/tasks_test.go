package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm"
)

// Leases: once another worker takes a stale task over, every write of the
// old worker is refused and changes nothing.
func TestTaskLeases(t *testing.T) { eachDatabase(t, testTaskLeases) }

func testTaskLeases(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	if err := s.CreateTask(ctx, &Task{ID: "t1", Agent: "a", SessionID: "s1", Input: "hi", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	old, err := s.ClaimTask(ctx, "old", time.Now().Add(-time.Minute))
	if err != nil || old == nil || old.Attempts != 1 {
		t.Fatalf("claim: %+v %v", old, err)
	}
	if again, _ := s.ClaimTask(ctx, "other", time.Now().Add(-time.Minute)); again != nil {
		t.Fatalf("a fresh lease was claimed twice: %+v", again)
	}
	if err := s.SaveStep(ctx, "t1", "old", 1, llm.Message{Role: llm.RoleUser, Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	taken, err := s.ClaimTask(ctx, "new", time.Now()) // every heartbeat is stale now
	if err != nil || taken == nil || taken.Attempts != 2 || taken.LeaseOwner != "new" {
		t.Fatalf("takeover: %+v %v", taken, err)
	}
	if _, err := s.Heartbeat(ctx, "t1", "old"); !errors.Is(err, ErrConflict) {
		t.Fatalf("old heartbeat: %v", err)
	}
	if err := s.SaveStep(ctx, "t1", "old", 1, llm.Message{Role: llm.RoleAssistant, Content: "late"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("old checkpoint: %v", err)
	}
	if err := s.FinishAttempt(ctx, "t1", "old", TaskOutcome{State: TaskFailed, Error: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("old finish: %v", err)
	}
	if err := s.CompleteTask(ctx, taken, "old", 1, nil, "r"); !errors.Is(err, ErrConflict) {
		t.Fatalf("old complete: %v", err)
	}
	steps, _ := s.Steps(ctx, "t1")
	if len(steps) != 1 {
		t.Fatalf("%d steps", len(steps))
	}
	msgs := []llm.Message{{Role: llm.RoleUser, Content: "hi"}, {Role: llm.RoleAssistant, Content: "hello"}}
	if err := s.CompleteTask(ctx, taken, "new", 1, msgs, map[string]string{"reply": "hello"}); err != nil {
		t.Fatal(err)
	}
	done, _ := s.GetTask(ctx, "t1")
	hist, _ := s.History(ctx, "s1")
	if done.State != TaskCompleted || string(done.Result) != `{"reply":"hello"}` || len(hist) != 2 || done.FinishedAt.IsZero() {
		t.Fatalf("%+v %v", done, hist)
	}
}

// Pages: newest first, filtered, every task exactly once across pages.
func TestTaskPages(t *testing.T) { eachDatabase(t, testTaskPages) }

func testTaskPages(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	for i := range 7 {
		agent := "a"
		if i%2 == 1 {
			agent = "b"
		}
		if err := s.CreateTask(ctx, &Task{ID: fmt.Sprintf("t%d", i), Agent: agent, SessionID: "s", Input: "x", MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		tasks, next, err := s.ListTasks(ctx, TaskFilter{Agent: "a", Limit: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if task.Agent != "a" || seen[task.ID] {
				t.Fatalf("page %d: %+v", pages, task)
			}
			seen[task.ID] = true
		}
		if tok = next; tok == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("%d tasks of agent a across pages", len(seen))
	}
	if _, _, err := s.ListTasks(ctx, TaskFilter{PageToken: "!!"}); !errors.Is(err, ErrBadPageToken) {
		t.Fatalf("bad token: %v", err)
	}
}
