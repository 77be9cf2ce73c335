package store

import (
	"context"
	"errors"
	"testing"

	"github.com/hector-run/hector/internal/llm"
)

func TestOwnersAreRecordedAndScoped(t *testing.T) { eachDatabase(t, testOwnersAreRecordedAndScoped) }

func testOwnersAreRecordedAndScoped(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	alice := Owner{Tenant: "acme", Principal: "idp:alice"}
	bob := Owner{Tenant: "acme", Principal: "idp:bob"}
	eve := Owner{Tenant: "evil", Principal: "idp:alice"} // same subject, other tenant
	msg := []llm.Message{{Role: llm.RoleUser, Content: "hi"}}
	if err := s.AppendTurn(ctx, "s-alice", "a", alice, 1, msg); err != nil {
		t.Fatal(err)
	}
	sess, err := s.Session(ctx, "s-alice")
	if err != nil || sess.Owner != alice {
		t.Fatalf("session owner %+v %v", sess, err)
	}
	// Another tenant cannot append to the session, even by naming it.
	if err := s.AppendTurn(ctx, "s-alice", "a", eve, 1, msg); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cross-tenant append: %v", err)
	}
	// Nor another principal of the same tenant.
	if err := s.AppendTurn(ctx, "s-alice", "a", bob, 1, msg); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another principal's append: %v", err)
	}
	if h, _ := s.History(ctx, "s-alice"); len(h) != 1 {
		t.Fatalf("another's append changed the session: %d messages", len(h))
	}
	// A session from before owners were recorded is adopted by the first
	// principal of its tenant that continues it.
	if err := s.AppendTurn(ctx, "legacy", "a", Owner{Tenant: "acme"}, 1, msg); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, "legacy", "a", bob, 1, msg); err != nil {
		t.Fatal(err)
	}
	if sess, _ := s.Session(ctx, "legacy"); sess.Owner != bob {
		t.Fatalf("legacy session not adopted: %+v", sess.Owner)
	}
	if err := s.AppendTurn(ctx, "legacy", "a", alice, 1, msg); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an adopted session taken again: %v", err)
	}
	if !(Owner{Tenant: "acme"}).MayContinue(bob) || alice.MayContinue(bob) || (Owner{Tenant: "evil"}).MayContinue(bob) {
		t.Fatal("MayContinue")
	}
	for i, o := range []Owner{alice, alice, bob, eve} {
		tk := &Task{ID: NewTaskID(), Agent: "a", SessionID: NewSessionID(), Input: "x", MaxAttempts: 1, Owner: o}
		if err := s.CreateTask(ctx, tk); err != nil {
			t.Fatal(i, err)
		}
		got, err := s.GetTask(ctx, tk.ID)
		if err != nil || got.Owner != o {
			t.Fatalf("task %d owner %+v %v", i, got, err)
		}
	}
	for _, c := range []struct {
		scope *Scope
		want  int
	}{
		{nil, 4},
		{&Scope{Tenant: "acme"}, 3},
		{&Scope{Tenant: "acme", Principal: "idp:alice"}, 2},
		{&Scope{Tenant: "evil", Principal: "idp:alice"}, 1},
		{&Scope{Tenant: ""}, 0},
	} {
		list, _, err := s.ListTasks(ctx, TaskFilter{Scope: c.scope})
		if err != nil || len(list) != c.want {
			t.Errorf("scope %+v: %d tasks (%v), want %d", c.scope, len(list), err, c.want)
		}
		n, err := s.CountMatching(ctx, TaskFilter{Scope: c.scope})
		if err != nil || n != c.want {
			t.Errorf("scope %+v: count %d (%v), want %d", c.scope, n, err, c.want)
		}
	}
	if !(Scope{Tenant: "acme"}).Sees(bob) || (Scope{Tenant: "acme", Principal: "idp:alice"}).Sees(bob) || (Scope{Tenant: "acme"}).Sees(eve) {
		t.Fatal("Scope.Sees")
	}
}
