package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// mcpToolsConfig serves agent a with two stdio MCP servers, this test
// binary re-run as the test MCP server: fa (prefix a_, a_meta needs
// approval) and fb (prefix b_, with variable V=fbEnv), or fb's command
// replaced by fbCommand.
func mcpToolsConfig(model, dir, fbCommand, fbEnv string) string {
	server := func(name, command, extra string) string {
		return fmt.Sprintf("    type: mcp\n    command: %q\n    env: {%s: \"1\", %s: %q%s}\n", command,
			testsvc.MCPServerEnv, testsvc.MCPStartsEnv, filepath.Join(dir, name), extra)
	}
	return fmt.Sprintf(`llms:
  m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}
agents:
  a: {llm: m, tools: [fa, fb]}
tools:
  fa:
%s    prefix: a_
    include: [echo, slow, meta]
    require_approval: [meta]
    approval_prompt: Read the key?
  fb:
%s    prefix: b_
server: {port: 0}
`, model, server("fa", os.Args[0], ""), server("fb", fbCommand, `, V: "`+fbEnv+`"`))
}

// An agent calls MCP servers' tools through a running hector: the model
// sees the filtered, prefixed tools; a call needing approval pauses the
// task until approved and then carries the task's idempotency key; a
// reload that changes one server while a call on the other is in flight
// lets the call finish and starts only the changed server again; a server
// that cannot start rejects the reload with its reason.
func TestMCPToolsServe(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	model := llmtest.NewOpenAI(t)
	var offered []string
	model.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastTool != "" {
			return llmtest.Reply{Text: "got: " + r.LastTool}
		}
		offered = r.Tools
		switch r.LastUser {
		case "slow":
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "a_slow", Args: `{"ms": 1500}`}}}
		case "meta":
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "a_meta", Args: `{}`}}}
		case "crash":
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "b_crash", Args: `{}`}}}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "a_echo", Args: `{"text": "hi"}`}}}
	}
	cfg := writeConfig(t, mcpToolsConfig(model.URL, dir, os.Args[0], "1"))
	p := startServe(t, bin, "--config", cfg)
	base := "http://" + p.addr

	if reply := p.ask(t, "echo"); reply != "got: echo: hi" {
		t.Fatalf("echo: %q", reply)
	}
	if got := strings.Join(offered, ","); !strings.HasPrefix(got, "a_echo,a_meta,a_slow,b_big,b_crash,b_echo") {
		t.Errorf("the model was offered %s", got)
	}
	if _, metrics := httpGet(t, base+"/metrics"); !strings.Contains(metrics, `hector_tool_calls_total{app="",outcome="ok",tool="fa",type="mcp"} 1`) {
		t.Errorf("the MCP call is not counted as its entry's:\n%s", grepLines(metrics, "hector_tool_calls_total"))
	}

	code, body := httpDo(t, "POST", base+"/v1/agents/a/messages", `{"message":"meta"}`)
	approval, _ := body["approval"].(map[string]any)
	if code != 202 || body["state"] != "input_required" || approval["tool"] != "a_meta" || approval["prompt"] != "Read the key?" {
		t.Fatalf("meta: %d %v", code, body)
	}
	id := body["task_id"].(string)
	if code, body := httpDo(t, "POST", base+"/v1/tasks/"+id+"/approve", `{}`); code != 200 {
		t.Fatalf("approve: %d %v", code, body)
	}
	task := waitTask(t, base, id, "completed")
	result, _ := task["result"].(map[string]any)
	if reply := fmt.Sprint(result["reply"]); reply != "got: key="+id+"/c1" {
		t.Errorf("the approved call's reply %q lacks the task's idempotency key", reply)
	}

	slow := make(chan string, 1)
	go func() { slow <- p.ask(t, "slow") }()
	time.Sleep(400 * time.Millisecond)
	if err := os.WriteFile(cfg, []byte(mcpToolsConfig(model.URL, dir, os.Args[0], "2")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, func(l string) bool { return strings.Contains(l, "result=applied version=2") })
	if reply := <-slow; reply != "got: slept 1500ms" {
		t.Errorf("the in-flight call: %q", reply)
	}
	if a, b := testsvc.MCPStarts(filepath.Join(dir, "fa")), testsvc.MCPStarts(filepath.Join(dir, "fb")); a != 1 || b != 2 {
		t.Errorf("process starts: fa %d, fb %d; want 1 and 2", a, b)
	}

	// fb crashes and is restarted: the metrics say so.
	if reply := p.ask(t, "crash"); !strings.HasPrefix(reply, "got: error: MCP server fb: crash:") {
		t.Errorf("crash: %q", reply)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, metrics := httpGet(t, base+"/metrics")
		if strings.Contains(metrics, `hector_mcp_server_restarts_total{app="",tool="fb"} 1`) && strings.Contains(metrics, `hector_mcp_server_up{app="",tool="fb"} 1`) &&
			strings.Contains(metrics, `hector_mcp_server_restarts_total{app="",tool="fa"} 0`) && strings.Contains(metrics, `hector_mcp_server_up{app="",tool="fa"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restart is not in the metrics:\n%s", grepLines(metrics, "hector_mcp_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b := testsvc.MCPStarts(filepath.Join(dir, "fb")); b != 3 {
		t.Errorf("fb started %d times; want 3", b)
	}

	if err := os.WriteFile(cfg, []byte(mcpToolsConfig(model.URL, dir, "/nonexistent/mcp-server", "3")), 0o600); err != nil {
		t.Fatal(err)
	}
	l := p.waitFor(t, func(l string) bool { return strings.Contains(l, "reload rejected") })
	if !strings.Contains(l, "tools.fb: MCP server: starting /nonexistent/mcp-server") {
		t.Errorf("rejection: %s", l)
	}
	if reply := p.ask(t, "echo"); reply != "got: echo: hi" {
		t.Errorf("after the rejected reload: %q", reply)
	}
}

func waitTask(t *testing.T, base, id, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, task := httpDo(t, "GET", base+"/v1/tasks/"+id, "")
		if task["state"] == state {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not %s: %v", id, state, task)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
