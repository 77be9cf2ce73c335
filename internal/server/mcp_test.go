package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
)

// bearerTransport adds a bearer key to every request.
type bearerTransport struct{ key string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.key != "" {
		r.Header.Set("Authorization", "Bearer "+b.key)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func mcpSession(t *testing.T, h *hector, key string, changed chan struct{}) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}})
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.base + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{key}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func callAgent(t *testing.T, cs *mcp.ClientSession, agent string, args map[string]any) (string, map[string]any) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: agent, Arguments: args})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if res.IsError {
		t.Fatalf("%s: %s", agent, text)
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return text, sc
}

// The official go-sdk client against /mcp: each agent is a tool; a call
// runs a turn and names its session, which a second call continues; a
// reload that adds and removes agents reaches a connected session as
// notifications/tools/list_changed.
func TestAgentsOverMCP(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, chatConfig(fake.URL, ""))
	changed := make(chan struct{}, 1)
	cs := mcpSession(t, h, "", changed)
	if got := toolNames(t, cs); fmt.Sprint(got) != "[assistant helper]" {
		t.Fatalf("tools: %v", got)
	}
	reply, sc := callAgent(t, cs, "assistant", map[string]any{"input": "hello"})
	session, _ := sc["session_id"].(string)
	if reply != "reply to: hello" || session == "" {
		t.Fatalf("call: %q %v", reply, sc)
	}
	if reply, _ := callAgent(t, cs, "assistant", map[string]any{"input": "again", "session_id": session}); reply != "reply to: again" {
		t.Fatalf("continued: %q", reply)
	}
	if last := fake.Requests()[len(fake.Requests())-1]; last.NumMessage != 3 {
		t.Fatalf("the continued call sent %d messages, want 3", last.NumMessage)
	}
	_, sess := h.get("/v1/sessions/" + session)
	if n := len(sess["messages"].([]any)); n != 4 {
		t.Fatalf("the session holds %d messages", n)
	}

	h.write(strings.Replace(chatConfig(fake.URL, ""), "  helper: {llm: gpt}\n", "  writer: {llm: gpt, description: Writes.}\n", 1))
	if o := h.next(); o.Result != reload.Applied {
		t.Fatalf("reload: %+v", o)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tools/list_changed after the reload")
	}
	if got := toolNames(t, cs); fmt.Sprint(got) != "[assistant writer]" {
		t.Fatalf("tools after the reload: %v", got)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "helper", Arguments: map[string]any{"input": "x"}})
	if err == nil && !res.IsError {
		t.Fatalf("a removed agent answered: %+v", res)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "writer", Arguments: map[string]any{}}); err == nil && !res.IsError {
		t.Fatalf("a call without input: %+v", res)
	}
}

// /mcp follows the route policy: without a key it is 401; a user's
// session is the user's, and its sessions are invisible to another user.
func TestMCPAuth(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	const alice, bob = "alice-key-0123456789ab", "bob-key-0123456789abcd"
	h := newHector(t, strings.Replace(chatConfig(fake.URL, ""), "server: {port: 0}",
		fmt.Sprintf("server:\n  port: 0\n  auth: {api_keys: [{name: alice, key: %s, role: user}, {name: bob, key: %s, role: user}]}", alice, bob), 1))
	req, _ := http.NewRequest("POST", h.base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("without a key: %v %v", resp, err)
	}
	cs := mcpSession(t, h, alice, make(chan struct{}, 1))
	_, sc := callAgent(t, cs, "assistant", map[string]any{"input": "mine"})
	other := mcpSession(t, h, bob, make(chan struct{}, 1))
	res, err := other.CallTool(context.Background(), &mcp.CallToolParams{Name: "assistant", Arguments: map[string]any{"input": "x", "session_id": sc["session_id"]}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "no session") {
		t.Fatalf("bob continued alice's session: %+v %v", res, err)
	}
}

// A failing turn's error reaches the MCP caller redacted, as on REST; a
// tenant without an app sees no tools; a caller may hold at most 32
// sessions, and a DELETE frees one.
func TestMCPLimits(t *testing.T) {
	const other = "other-key-0123456789ab"
	cfg := fmt.Sprintf(`llms:
  gpt: {provider: openai, model: m, base_url: "http://sk-SECRETTOKEN123@127.0.0.1:1/v1", api_key: test, max_retries: 0}
agents:
  assistant: {llm: gpt}
server:
  port: 0
  auth: {require: false, api_keys: [{name: o, key: %s, role: user, app: nowhere}]}
`, other)
	h := newHector(t, cfg)
	cs := mcpSession(t, h, "", make(chan struct{}, 1))
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "assistant", Arguments: map[string]any{"input": "x"}})
	if err != nil || !res.IsError {
		t.Fatalf("a failing model: %+v %v", res, err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; strings.Contains(text, "SECRETTOKEN") || !strings.Contains(text, "REDACTED") {
		t.Fatalf("the error is not redacted: %s", text)
	}
	if names := toolNames(t, mcpSession(t, h, other, make(chan struct{}, 1))); len(names) != 0 {
		t.Fatalf("a tenant without an app lists %v", names)
	}
	initialize := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", h.base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":`+
			`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+other)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	var last string
	for i := 1; i < 32; i++ { // the session above is the caller's first
		resp, err := initialize()
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("session %d: %v %v", i+1, resp, err)
		}
		last = resp.Header.Get("Mcp-Session-Id")
	}
	if resp, err := initialize(); err != nil || resp.StatusCode != 429 {
		t.Fatalf("a 33rd session: %v %v", resp, err)
	}
	del, _ := http.NewRequest("DELETE", h.base+"/mcp", nil)
	del.Header.Set("Mcp-Session-Id", last)
	del.Header.Set("Authorization", "Bearer "+other)
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	if resp, err := initialize(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a delete: %v %v", resp, err)
	}
}
