package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/testsvc"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eachDatabase runs f on a fresh SQLite file and a fresh PostgreSQL
// database: the store behaves the same on both.
func eachDatabase(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite://"+filepath.Join(t.TempDir(), "nested", "hector.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testsvc.Postgres(t)) })
}

func TestSessionsPersistAcrossReopen(t *testing.T) { eachDatabase(t, testSessionsPersistAcrossReopen) }

func testSessionsPersistAcrossReopen(t *testing.T, path string) {
	ctx := context.Background()
	s := open(t, path)
	if _, err := s.Session(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	turn := []llm.Message{
		{Role: llm.RoleUser, Content: "time?"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "clock", Arguments: json.RawMessage(`{"tz":"UTC"}`)}}},
		{Role: llm.RoleTool, ToolCallID: "c1", Name: "clock", Content: "noon", IsError: true},
		{Role: llm.RoleAssistant, Content: "It is noon."},
	}
	if err := s.AppendTurn(ctx, "s1", "assistant", Owner{}, 3, turn); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path) // migrations run again and must be a no-op
	defer s.Close()
	sess, err := s.Session(ctx, "s1")
	if err != nil || sess.Agent != "assistant" || sess.CreatedAt.IsZero() {
		t.Fatalf("%+v %v", sess, err)
	}
	got, err := s.History(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(turn)
	if string(gb) != string(wb) {
		t.Fatalf("history\n got %s\nwant %s", gb, wb)
	}
	stored, _ := s.Messages(ctx, "s1")
	if stored[3].Seq != 4 || stored[3].ConfigVersion != 3 {
		t.Fatalf("%+v", stored[3])
	}
}

func TestConcurrentAppendsKeepOrder(t *testing.T) { eachDatabase(t, testConcurrentAppendsKeepOrder) }

func testConcurrentAppendsKeepOrder(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msgs := []llm.Message{{Role: llm.RoleUser, Content: fmt.Sprint(i)}, {Role: llm.RoleAssistant, Content: fmt.Sprint(i)}}
			if err := s.AppendTurn(ctx, "shared", "a", Owner{}, 1, msgs); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	stored, err := s.Messages(ctx, "shared")
	if err != nil || len(stored) != 40 {
		t.Fatalf("%d messages, %v", len(stored), err)
	}
	for i := 0; i < 40; i += 2 { // each turn's two messages stay adjacent
		if stored[i].Seq != i+1 || stored[i].Content != stored[i+1].Content {
			t.Fatalf("turns interleaved at %d: %+v %+v", i, stored[i], stored[i+1])
		}
	}
}

func TestOpenRejectsUnsupportedURL(t *testing.T) {
	_, err := Open(context.Background(), "mysql://root:hunter2@x/db")
	if err == nil || !strings.Contains(err.Error(), "want sqlite://PATH or postgres://") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error naming the schemes, without the password: %v", err)
	}
}

// Several instances starting at once on one PostgreSQL migrate it once.
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	url := testsvc.Postgres(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A version is recorded once: the same content again is a no-op, other
// content under the same number is refused and the first record stands.
func TestConfigVersionRecordedOnce(t *testing.T) {
	eachDatabase(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := open(t, url)
		defer s.Close()
		v := ConfigVersion{Version: 1, Hash: "h1", Source: "file:x", Trigger: "startup", Format: "yaml", Content: "a: 1\n", AppliedAt: time.Now()}
		if err := s.SaveConfigVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveConfigVersion(ctx, v); err != nil {
			t.Fatalf("same content again: %v", err)
		}
		other := v
		other.Hash, other.Content = "h2", "a: 2\n"
		if err := s.SaveConfigVersion(ctx, other); !errors.Is(err, ErrVersionTaken) {
			t.Fatalf("other content: %v", err)
		}
		got, err := s.GetConfigVersion(ctx, "", 1)
		last, hash, lerr := s.LatestConfigRecord(ctx, "")
		if err != nil || got.Hash != "h1" || lerr != nil || last != 1 || hash != "h1" {
			t.Fatalf("%+v %v; latest %d %q %v", got, err, last, hash, lerr)
		}
	})
}
