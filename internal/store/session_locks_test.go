package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/testsvc"
)

// TestLockSessionExcludes holds one session's lease from two store
// instances on one database: holders never overlap, other sessions are
// not blocked, and a waiter gives up when its context ends.
func TestLockSessionExcludes(t *testing.T) {
	for name, url := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "h.db") },
		"postgres": func(t *testing.T) string { return testsvc.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			ctx := context.Background()
			var stores [2]*Store
			for i := range stores {
				st, err := Open(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				stores[i] = st
			}
			var inside, overlaps atomic.Int32
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					release, err := stores[i%2].LockSession(ctx, "s1")
					if err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					time.Sleep(20 * time.Millisecond) // a turn's work
					inside.Add(-1)
					release()
					release() // idempotent
				})
			}
			wg.Wait()
			if overlaps.Load() != 0 {
				t.Fatalf("%d holders of one session overlapped", overlaps.Load())
			}

			release, err := stores[0].LockSession(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			other, err := stores[1].LockSession(ctx, "s2")
			if err != nil {
				t.Fatalf("another session is blocked: %v", err)
			}
			other()
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if _, err := stores[1].LockSession(short, "s1"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("waiting on a held session: got %v, want the context's error", err)
			}
		})
	}
}

// A lease whose holder stopped renewing it (it crashed) is taken over
// once it has expired.
func TestLockSessionTakesOverExpiredLease(t *testing.T) {
	st, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.db.Exec(`INSERT INTO session_locks (session_id, owner, expires_at) VALUES ('s1', 'crashed', ?)`, ms(time.Now().Add(-time.Second))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	release, err := st.LockSession(ctx, "s1")
	if err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	release()
}

func TestIDs(t *testing.T) {
	for _, id := range []string{NewSessionID(), "a", "ctx-snake", "user:42.v1_x", strings.Repeat("x", 128)} {
		if !ValidSessionID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "has space", "a/b", strings.Repeat("x", 129), "é"} {
		if ValidSessionID(id) {
			t.Errorf("%q accepted", id)
		}
	}
	if a, b := NewTaskID(), NewTaskID(); a == b || !strings.HasPrefix(a, "t_") || len(a) != 34 {
		t.Fatalf("task ids %q %q", a, b)
	}
}

// AppendTurnReleasing stores the turn and gives the lease back in one
// transaction: the next holder gets it at once, and Release after it
// changes nothing.
func TestAppendTurnReleasing(t *testing.T) { eachDatabase(t, testAppendTurnReleasing) }

func testAppendTurnReleasing(t *testing.T, url string) {
	ctx := context.Background()
	st, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lease, err := st.TakeSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AppendTurnReleasing(ctx, lease, "a", Owner{}, 1, []llm.Message{{Role: llm.RoleUser, Content: "hi"}, {Role: llm.RoleAssistant, Content: "yo"}}); err != nil {
		t.Fatal(err)
	}
	lease.Release()
	quick, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	next, err := st.TakeSession(quick, "s1")
	if err != nil {
		t.Fatalf("the lease was not given back with the turn: %v", err)
	}
	next.Release()
	msgs, err := st.History(ctx, "s1")
	if err != nil || len(msgs) != 2 {
		t.Fatalf("history %v %v", msgs, err)
	}
}
