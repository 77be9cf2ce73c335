package remote

import (
	"context"
	"errors"
	"fmt"
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

// indexServer is a server with two agents, r and s, each on a2a-go's own
// server, whose well-known card is an index of them as Hector serves it.
// The index names card URLs on another origin (a public URL), which the
// client must not leave its configured origin for.
func indexServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, name := range []string{"r", "s"} {
		card := &a2a.AgentCard{Name: name, Description: "remote " + name, Version: "1",
			SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(srv.URL+"/a2a/"+name, a2a.TransportProtocolJSONRPC)},
			DefaultInputModes:   []string{"text/plain"}, DefaultOutputModes: []string{"text/plain"}}
		mux.Handle("/agents/"+name+"/.well-known/agent-card.json", a2asrv.NewStaticAgentCardHandler(card))
		mux.Handle("/a2a/"+name, a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(namedExec{name})))
	}
	mux.HandleFunc("/.well-known/agent-card.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"agents":[{"name":"r","card":"https://agents.example.com/agents/r/.well-known/agent-card.json","url":"https://agents.example.com/a2a/r"},
			{"name":"s","card":"https://agents.example.com/agents/s/.well-known/agent-card.json","url":"https://agents.example.com/a2a/s"}]}`)
	})
	return srv
}

// namedExec answers "NAME: INPUT".
type namedExec struct{ name string }

func (e namedExec) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
			return
		}
		if !yield(a2a.NewArtifactEvent(ec, a2a.NewTextPart(e.name+": "+ec.Message.Parts[0].Text())), nil) {
			return
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, nil), nil)
	}
}

func (namedExec) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return agentExec{}.Cancel(ctx, ec)
}

// TestRemoteAgentFromIndex: given a server's base URL that serves an
// index, the client calls the agent of its own name, or fails saying how
// to name one.
func TestRemoteAgentFromIndex(t *testing.T) {
	srv := indexServer(t)
	for _, name := range []string{"r", "s"} {
		got, err := ask(t, NewNamed(name, srv.URL, nil), "hi")
		if err != nil || got != name+": hi" {
			t.Fatalf("agent %s: %q %v", name, got, err)
		}
	}
	_, err := ask(t, NewNamed("zed", srv.URL, nil), "hi")
	var re *Error
	if !errors.As(err, &re) || re.Agent != "zed" || !strings.Contains(err.Error(), srv.URL+"/agents/NAME") || !strings.Contains(err.Error(), "r, s") {
		t.Fatalf("an agent the index does not name: %v", err)
	}
	if _, err := ask(t, New(srv.URL, nil), "hi"); err == nil || !strings.Contains(err.Error(), "/agents/NAME") {
		t.Fatalf("no name: %v", err)
	}
	// The agent's own URL needs no index.
	if got, err := ask(t, NewNamed("anything", srv.URL+"/agents/s", nil), "yo"); err != nil || got != "s: yo" {
		t.Fatalf("an agent URL: %q %v", got, err)
	}
}

// TestRemoteErrorsRedactPassword: a URL's password appears in no error.
func TestRemoteErrorsRedactPassword(t *testing.T) {
	srv := indexServer(t)
	withPassword := strings.Replace(srv.URL, "http://", "http://ann:s3cret-pw@", 1)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, u := range []string{withPassword, strings.Replace(closed.URL, "http://", "http://ann:s3cret-pw@", 1), withPassword + "/nothing-here"} {
		_, err := ask(t, NewNamed("zed", u, nil), "hi")
		var re *Error
		if !errors.As(err, &re) || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "REDACTED") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// A card that names an endpoint on another origin does not get the
// configured headers sent there.
func TestCardEndpointOnAnotherOrigin(t *testing.T) {
	var leaked atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Key") != "" {
			leaked.Add(1)
		}
		a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(agentExec{})).ServeHTTP(w, r)
	}))
	defer elsewhere.Close()
	card := &a2a.AgentCard{Name: "r", Description: "remote", Version: "1",
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(elsewhere.URL+"/rpc", a2a.TransportProtocolJSONRPC)},
		DefaultInputModes:   []string{"text/plain"}, DefaultOutputModes: []string{"text/plain"}}
	home := httptest.NewServer(a2asrv.NewStaticAgentCardHandler(card))
	defer home.Close()
	_, err := ask(t, New(home.URL, map[string]string{"X-Key": "k1"}), "hi")
	if err == nil || !strings.Contains(err.Error(), "other origins") || leaked.Load() != 0 {
		t.Fatalf("with headers: %v (leaked %d)", err, leaked.Load())
	}
	// Without headers, an endpoint elsewhere is used; both are on loopback
	// here, which the configured URL being on loopback allows.
	if got, err := ask(t, New(home.URL, nil), "hi"); err != nil || got != "remote: hi" {
		t.Fatalf("without headers: %q %v", got, err)
	}
}
