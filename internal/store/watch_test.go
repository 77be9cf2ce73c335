package store

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

func signalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(3 * time.Second):
		t.Fatalf("no signal for %s", what)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestWatchAcrossInstances: two stores on one PostgreSQL database, as two
// instances have. A watcher on one hears the other's task state changes
// and cancel requests; checkpoints stay local (see migration 0006).
func TestWatchAcrossInstances(t *testing.T) {
	url := testsvc.Postgres(t)
	ctx := context.Background()
	a, b := open(t, url), open(t, url)
	defer a.Close()
	defer b.Close()
	all, stopAll := a.WatchTasks()
	defer stopAll()
	one, stopOne := a.WatchTask("t1")
	defer stopOne()
	cancels, stopCancel := a.WatchCancel("t1")
	defer stopCancel()
	// Once listening, the store signals every watcher (it may have missed
	// changes before): from then on nothing is missed.
	signalled(t, all, "the listener's start")
	drain(one)
	if err := b.CreateTask(ctx, &Task{ID: "t1", Agent: "a", SessionID: "s1", Input: "hi", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	signalled(t, one, "a task created on the other instance")
	signalled(t, all, "a task created on the other instance (all tasks)")
	if _, err := b.ClaimTask(ctx, "w", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	signalled(t, one, "a task claimed on the other instance")
	if _, err := b.CancelTask(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	signalled(t, cancels, "a cancel requested on the other instance")
}

// TestWatchLocal: every write of this process signals the task's
// watchers, on both databases.
func TestWatchLocal(t *testing.T) { eachDatabase(t, testWatchLocal) }

func testWatchLocal(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	ch, stop := s.WatchTask("t1")
	defer stop()
	cancels, stopCancel := s.WatchCancel("t1")
	defer stopCancel()
	if err := s.CreateTask(ctx, &Task{ID: "t1", Agent: "a", SessionID: "s1", Input: "hi", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "create")
	drain(ch)
	if _, err := s.ClaimTask(ctx, "w", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "claim")
	if _, err := s.CancelTask(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	signalled(t, cancels, "cancel of a running task")
	stop()
	drain(ch)
	if err := s.CreateTask(ctx, &Task{ID: "t2", Agent: "a", SessionID: "s1", Input: "hi", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("a stopped watch was signalled")
	case <-time.After(50 * time.Millisecond):
	}
}

// TestPushConfigs: webhooks are stored per task, and each task state is
// claimed for sending once.
func TestPushConfigs(t *testing.T) { eachDatabase(t, testPushConfigs) }

func testPushConfigs(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	if err := s.CreateTask(ctx, &Task{ID: "t1", Agent: "a", SessionID: "s1", Input: "hi", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePushConfig(ctx, "t1", "hook", `{"url":"http://example.com/1"}`); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePushConfig(ctx, "t1", "hook", `{"url":"http://example.com/2"}`); err != nil { // replaces
		t.Fatal(err)
	}
	cs, err := s.PushConfigs(ctx, "t1")
	if err != nil || len(cs) != 1 || cs[0].Config != `{"url":"http://example.com/2"}` {
		t.Fatalf("configs: %+v %v", cs, err)
	}
	pending, err := s.PendingPushes(ctx)
	if err != nil || len(pending) != 1 || pending[0].SentState != TaskPending {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	if ok, err := s.ClaimPush(ctx, "t1", "hook", TaskPending); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, _ := s.ClaimPush(ctx, "t1", "hook", TaskPending); ok {
		t.Fatal("a state was claimed twice")
	}
	if pending, _ := s.PendingPushes(ctx); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
	if err := s.DeletePushConfig(ctx, "t1", "hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushConfig(ctx, "t1", "hook"); err != ErrNotFound {
		t.Fatalf("deleted config: %v", err)
	}
	if err := s.DeletePushConfig(ctx, "t1", "hook"); err != ErrNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if n, err := s.CountMatching(ctx, TaskFilter{Agent: "a", SessionID: "s1"}); err != nil || n != 1 {
		t.Fatalf("count: %d %v", n, err)
	}
}

// A lost listener is logged once, and so is its return.
func TestListenerLossIsLogged(t *testing.T) {
	url := testsvc.Postgres(t)
	var logs testsvc.Buffer
	s, err := Open(context.Background(), url, WithLog(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, stop := s.WatchTasks()
	defer stop()
	signalled(t, all, "the listener's start")
	testsvc.TerminateConnections(t, url)
	signalled(t, all, "the listener's return")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "task event listener reconnected") {
		if time.Now().After(deadline) {
			t.Fatalf("logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "task event listener lost"); n != 1 {
		t.Fatalf("lost logged %d times:\n%s", n, logs.String())
	}
}
