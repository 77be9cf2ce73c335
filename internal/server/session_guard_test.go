package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/queue"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/testsvc"
)

// A REST message and a durable task on one session, run at the same time
// by two instances (two runtimes, each with its own store, on one
// database), take turns: whichever runs second sees the first's messages,
// and the session holds both turns in order.
func TestSessionTurnsDoNotInterleave(t *testing.T) {
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "h.db") },
		"postgres": func(t *testing.T) string { return testsvc.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			u := dbURL(t)
			fake := llmtest.NewOpenAI(t)
			fake.Respond = func(r llmtest.Request) llmtest.Reply {
				return llmtest.Reply{Text: "reply to: " + r.LastUser, Delay: 300 * time.Millisecond}
			}
			doc := fmt.Sprintf("llms: {m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}}\nagents: {a: {llm: m}}\ndatabase: {url: %q}\n", fake.URL, u)
			instance := func() (*snapshot.Runtime, *store.Store) {
				d, errs := config.Parse([]byte(doc), func(string) (string, bool) { return "", false })
				if errs != nil {
					t.Fatal(errs)
				}
				snap, err := snapshot.Build(context.Background(), d.Config, nil, snapshot.Options{})
				if err != nil {
					t.Fatal(err)
				}
				snap.Version = 1
				rt := &snapshot.Runtime{}
				rt.Commit(snap)
				t.Cleanup(rt.Close)
				return rt, snap.Store
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			restRT, _ := instance()
			workerRT, workerStore := instance()
			srv := &Server{Runtime: restRT, Log: log}
			q := &queue.Queue{Runtime: workerRT, Log: log, Instance: "w", PollInterval: 10 * time.Millisecond}
			ctx, cancel := context.WithCancel(context.Background())
			q.Start(ctx)
			t.Cleanup(func() { cancel(); q.Wait() })

			task := &store.Task{ID: store.NewTaskID(), Agent: "a", SessionID: "shared", Input: "from the task", MaxAttempts: 1,
				Owner: store.Owner{Principal: "anonymous"}} // the REST caller of this keyless server
			if err := workerStore.CreateTask(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			q.Wake()
			rec := httptest.NewRecorder()
			reqCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			req := httptest.NewRequest(http.MethodPost, "/v1/agents/a/messages", strings.NewReader(`{"message":"from rest","session_id":"shared"}`)).WithContext(reqCtx)
			req.Host = "127.0.0.1"
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("REST turn: %d %s", rec.Code, rec.Body)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, err := workerStore.GetTask(context.Background(), task.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State == store.TaskCompleted {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("task is %s", got.State)
				}
				time.Sleep(10 * time.Millisecond)
			}

			reqs := fake.Requests()
			if len(reqs) != 2 || reqs[0].NumMessage != 1 || reqs[1].NumMessage != 3 {
				t.Fatalf("the turns interleaved: the second model call must see the first turn; requests %+v", reqs)
			}
			hist, err := workerStore.History(context.Background(), "shared")
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 4 || hist[0].Content != reqs[0].LastUser || hist[2].Content != reqs[1].LastUser {
				t.Fatalf("session history out of order: %+v", hist)
			}
			for i := 1; i < len(hist); i += 2 {
				if hist[i].Content != "reply to: "+hist[i-1].Content {
					t.Fatalf("message %d answers %q, not its turn's %q", i, hist[i].Content, hist[i-1].Content)
				}
			}
		})
	}
}
