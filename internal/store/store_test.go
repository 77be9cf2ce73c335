package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hector-run/hector/internal/llm"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionsPersistAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "hector.db")
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
	if err := s.AppendTurn(ctx, "s1", "assistant", 3, turn); err != nil {
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

func TestConcurrentAppendsKeepOrder(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	defer s.Close()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msgs := []llm.Message{{Role: llm.RoleUser, Content: fmt.Sprint(i)}, {Role: llm.RoleAssistant, Content: fmt.Sprint(i)}}
			if err := s.AppendTurn(ctx, "shared", "a", 1, msgs); err != nil {
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
	if _, err := Open(context.Background(), "postgres://x"); err == nil {
		t.Fatal("want an error")
	}
}
