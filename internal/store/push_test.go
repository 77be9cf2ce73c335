package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestPushLimits(t *testing.T) { eachDatabase(t, testPushLimits) }

// testPushLimits: a task takes PerTask webhooks, an owner PerOwner on its
// unfinished tasks; replacing a webhook takes no new place, and webhooks
// of finished tasks stop counting.
func testPushLimits(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	for i := range 3 {
		if err := s.CreateTask(ctx, &Task{ID: fmt.Sprint("t", i), Agent: "a", SessionID: "s", Input: "hi", MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	lim := PushLimits{PerTask: 2, PerOwner: 3}
	save := func(task, id, owner string) error {
		return s.SavePushConfigFor(ctx, task, id, owner, `{"url":"http://example.com/"}`, lim)
	}
	for _, id := range []string{"a", "b", "a"} { // the second a replaces the first
		if err := save("t0", id, "vera"); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	var le *PushLimitError
	if err := save("t0", "c", "vera"); !errors.As(err, &le) || !le.PerTask || le.Limit != 2 {
		t.Fatalf("third webhook on a task: %v", err)
	}
	if err := save("t1", "a", "vera"); err != nil {
		t.Fatal(err)
	}
	if err := save("t1", "b", "vera"); !errors.As(err, &le) || le.PerTask || le.Limit != 3 {
		t.Fatalf("fourth webhook of an owner: %v", err)
	}
	if err := save("t1", "b", "otto"); err != nil { // another owner
		t.Fatal(err)
	}
	if cs, _ := s.PushConfigs(ctx, "t0"); len(cs) != 2 {
		t.Fatalf("t0 has %d webhooks", len(cs))
	}
	// A finished task's webhooks no longer count against its owner.
	if _, err := s.CancelTask(ctx, "t0"); err != nil {
		t.Fatal(err)
	}
	if err := save("t2", "a", "vera"); err != nil {
		t.Fatalf("after t0 finished: %v", err)
	}
}
