package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/tool"
)

type fnTool struct {
	fn func(map[string]any) (string, error)
}

func (f fnTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: "fn", Parameters: map[string]any{"type": "object", "properties": map[string]any{}}}
}
func (f fnTool) Call(_ context.Context, a map[string]any) (string, error) { return f.fn(a) }

func openAIAgent(t *testing.T, maxIter int, tools map[string]tool.Tool) (*Agent, *llmtest.Server) {
	srv := llmtest.NewOpenAI(t)
	retries := 0
	c, err := llm.New(config.LLM{Provider: "openai", Model: "m", BaseURL: srv.URL + "/v1", MaxRetries: &retries, Timeout: config.Duration(5e9)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range tools {
		names = append(names, n)
	}
	return New("a", "", "sys", maxIter, c, names, tools, nil), srv
}

func TestTurnRunsToolsAndReturnsErrorsToTheModel(t *testing.T) {
	calls := 0
	a, srv := openAIAgent(t, 5, map[string]tool.Tool{
		"ok": fnTool{func(m map[string]any) (string, error) { calls++; return "v=" + m["v"].(string), nil }},
		"fail": fnTool{func(map[string]any) (string, error) {
			return "", errors.New(`disk on fire; Get "https://h.example/x?api_key=tool-secret": EOF`)
		}},
		"boom": fnTool{func(map[string]any) (string, error) { panic("bug") }},
	})
	srv.Push(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "1", Name: "ok", Args: `{"v":"x"}`}, {ID: "2", Name: "fail", Args: `{}`}}},
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "3", Name: "nope", Args: `{}`}, {ID: "4", Name: "boom", Args: `{}`}, {ID: "5", Name: "ok", Args: `not json`}}},
		llmtest.Reply{Text: "done"},
	)
	var events []string
	res, err := a.Run(context.Background(), []llm.Message{{Role: llm.RoleUser, Content: "earlier"}, {Role: llm.RoleAssistant, Content: "yes"}}, "go",
		func(e Event) { events = append(events, string(e.Type)) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply != "done" || res.Iterations != 3 || res.StopReason != StopAnswer || calls != 1 {
		t.Fatalf("%+v calls=%d", res, calls)
	}
	// user, assistant(2 calls), 2 results, assistant(3 calls), 3 results, final
	if len(res.Messages) != 9 {
		t.Fatalf("%d messages", len(res.Messages))
	}
	want := map[string]string{"1": "v=x", "2": `error: disk on fire; Get "https://h.example/x?api_key=REDACTED": EOF`, "3": `error: unknown tool "nope"`, "4": "error: tool boom panicked: bug"}
	for _, m := range res.Messages {
		if w, ok := want[m.ToolCallID]; ok && m.Role == llm.RoleTool && m.Content != w {
			t.Errorf("result of %s = %q, want %q", m.ToolCallID, m.Content, w)
		}
		if m.ToolCallID == "5" && !strings.Contains(m.Content, "not a JSON object") {
			t.Errorf("bad arguments result %q", m.Content)
		}
	}
	if reqs := srv.Requests(); reqs[0].NumMessage != 4 || reqs[0].System != "sys" { // system + 2 history + user
		t.Fatalf("first request %+v", reqs[0])
	}
	if strings.Join(events, ",") != "tool_call,tool_result,tool_call,tool_result,tool_call,tool_result,tool_call,tool_result,tool_call,tool_result,text" {
		t.Fatalf("events %v", events)
	}
}

func TestTurnStopsAtMaxIterations(t *testing.T) {
	a, srv := openAIAgent(t, 2, map[string]tool.Tool{"ok": fnTool{func(map[string]any) (string, error) { return "", nil }}})
	srv.Respond = func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "ok", Args: `{}`}}}
	}
	res, err := a.Run(context.Background(), nil, "loop", nil)
	if err != nil || res.StopReason != StopMaxIterations || res.Iterations != 2 || len(srv.Requests()) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestTurnFailsOnModelError(t *testing.T) {
	a, srv := openAIAgent(t, 2, nil)
	srv.Push(llmtest.Reply{Status: 400})
	if _, err := a.Run(context.Background(), nil, "x", nil); err == nil {
		t.Fatal("want error")
	}
}

// gatedTool is a set's tool that decides its own approval.
type gatedTool struct {
	name  string
	gated bool
	calls *int
}

func (g gatedTool) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: g.name, Parameters: map[string]any{"type": "object", "properties": map[string]any{}}}
}
func (g gatedTool) Call(context.Context, map[string]any) (string, error) {
	*g.calls++
	return "ran", nil
}
func (g gatedTool) Approval() (string, bool) { return "ok?", g.gated }

type fixedSet []tool.Tool

func (s fixedSet) Tools() []tool.Tool { return s }

// A set's tools are offered after the fixed ones; a call needs approval
// when any tool of its name does, even one hidden by an earlier tool, so
// a set's list changing cannot move a gated call to an ungated tool.
func TestSetToolsAndApprovals(t *testing.T) {
	calls := 0
	a, srv := openAIAgent(t, 3, map[string]tool.Tool{"fn": fnTool{func(map[string]any) (string, error) { return "", nil }}})
	a.Sets = []tool.Set{fixedSet{gatedTool{"fn", false, &calls}, gatedTool{"g", false, &calls}}, fixedSet{gatedTool{"g", true, &calls}}}
	srv.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "g", Args: `{}`}}})
	_, err := a.Run(context.Background(), nil, "go", nil)
	var wait *ApprovalRequired
	if !errors.As(err, &wait) || wait.Call.Name != "g" || wait.Prompt != "ok?" {
		t.Fatalf("g, gated in the second set: %v", err)
	}
	if got := srv.Requests()[0].Tools; strings.Join(got, ",") != "fn,g" {
		t.Errorf("offered %v (a set's fn is hidden by the fixed fn, the second g by the first)", got)
	}
	srv.Push(llmtest.Reply{Text: "done"})
	turn := []llm.Message{{Role: llm.RoleUser, Content: "go"}, {Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "g", Arguments: json.RawMessage(`{}`)}}}}
	res, err := a.RunFrom(context.Background(), nil, turn, Hooks{Decide: func(llm.ToolCall) Decision { return Decision{Decided: true, Reason: "no"} }})
	if err != nil || calls != 0 || !strings.Contains(res.Messages[2].Content, "rejected this call: no") {
		t.Fatalf("rejected call: calls=%d %v %+v", calls, err, res)
	}
}
