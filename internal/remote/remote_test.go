package remote

import (
	"context"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/hector-run/hector/internal/llm"
)

// agentExec is a remote agent built on a2a-go's own server: it answers
// "remote: INPUT" as a completed task's artifact, or fails when asked to.
type agentExec struct{}

func (agentExec) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		in := ec.Message.Parts[0].Text()
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
			return
		}
		if in == "fail" {
			yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateFailed, a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart("cannot"))), nil)
			return
		}
		if !yield(a2a.NewArtifactEvent(ec, a2a.NewTextPart("remote: "+in)), nil) {
			return
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, nil), nil)
	}
}

func (agentExec) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCanceled, nil), nil)
	}
}

// remoteAgent serves an agent card at /.well-known/agent-card.json and
// JSON-RPC at /rpc, counting card fetches and checking a header.
func remoteAgent(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var cards, missingHeader atomic.Int64
	mux := http.NewServeMux()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Key") != "k1" {
			missingHeader.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	card := &a2a.AgentCard{Name: "r", Description: "remote", Version: "1",
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(srv.URL+"/rpc", a2a.TransportProtocolJSONRPC)},
		DefaultInputModes:   []string{"text/plain"}, DefaultOutputModes: []string{"text/plain"}}
	cardHandler := a2asrv.NewStaticAgentCardHandler(card)
	mux.HandleFunc("/.well-known/agent-card.json", func(w http.ResponseWriter, r *http.Request) {
		cards.Add(1)
		cardHandler.ServeHTTP(w, r)
	})
	mux.Handle("/rpc", a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(agentExec{})))
	return srv, &cards, &missingHeader
}

func ask(t *testing.T, c *Client, text string) (string, error) {
	t.Helper()
	res, err := c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "earlier"},
		{Role: llm.RoleAssistant, Content: "x"}, {Role: llm.RoleUser, Content: text}}}, nil)
	if err != nil {
		return "", err
	}
	return res.Message.Content, nil
}

func TestRemoteAgent(t *testing.T) {
	srv, cards, missing := remoteAgent(t)
	for _, url := range []string{srv.URL, srv.URL + "/.well-known/agent-card.json"} {
		c := New(url, map[string]string{"X-Key": "k1"})
		for _, q := range []string{"one", "two"} {
			got, err := ask(t, c, q)
			if err != nil || got != "remote: "+q {
				t.Fatalf("%s: %q %v", url, got, err)
			}
		}
		card, err := c.Card(context.Background())
		if err != nil || card.Name != "r" {
			t.Fatalf("card: %+v %v", card, err)
		}
		if _, err := ask(t, c, "fail"); err == nil || !strings.Contains(err.Error(), "FAILED") || !strings.Contains(err.Error(), "cannot") {
			t.Fatalf("a failed remote task: %v", err)
		}
	}
	if n := cards.Load(); n != 2 { // one per client: cached for CardTTL
		t.Fatalf("card fetched %d times", n)
	}
	if n := missing.Load(); n != 0 {
		t.Fatalf("%d requests without the configured header", n)
	}
	// Unreachable: the error names the agent's URL.
	srv.Close()
	if _, err := ask(t, New(srv.URL, nil), "x"); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("unreachable remote: %v", err)
	}
}
