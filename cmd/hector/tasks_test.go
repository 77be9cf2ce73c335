package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// httpDo sends a JSON request, with the bearer key if one is given.
func httpDo(t *testing.T, method, url, body string, key ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(key) > 0 {
		req.Header.Set("Authorization", "Bearer "+key[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// Tasks over HTTP and the CLI against a real server process.
func TestTasksAPIAndCLI(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: work}\nserver: {port: 0}\n")
	p := startServe(t, bin, "--config", cfg, "--database", "sqlite://h.db", "--queue-workers", "2")
	base := "http://" + p.addr

	var ids []string
	for i := range 3 {
		code, body := httpDo(t, "POST", base+"/v1/agents/a/tasks", fmt.Sprintf(`{"message":"job %d"}`, i))
		if code != http.StatusAccepted || body["state"] != "pending" || body["id"] == nil {
			t.Fatalf("create: %d %v", code, body)
		}
		ids = append(ids, body["id"].(string))
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			_, body := httpDo(t, "GET", base+"/v1/tasks/"+id, "")
			if body["state"] == "completed" {
				res := body["result"].(map[string]any)
				steps := body["steps"].([]any)
				if !strings.HasPrefix(res["reply"].(string), "[work] job") || len(steps) != 2 {
					t.Fatalf("%v", body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: %v", id, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`hector_tasks{state="completed"} 3`, `hector_tasks{state="pending"} 0`, `hector_task_attempts_total{outcome="completed"} 3`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	code, page := httpDo(t, "GET", base+"/v1/tasks?status=completed&agent=a&limit=2", "")
	if code != 200 || len(page["tasks"].([]any)) != 2 || page["next_page_token"] == "" {
		t.Fatalf("page 1: %d %v", code, page)
	}
	code, page2 := httpDo(t, "GET", base+"/v1/tasks?limit=2&page_token="+page["next_page_token"].(string), "")
	if code != 200 || len(page2["tasks"].([]any)) != 1 || page2["next_page_token"] != "" {
		t.Fatalf("page 2: %d %v", code, page2)
	}
	for _, c := range []struct{ url, want string }{
		{"/v1/tasks?status=done", "parameter status"},
		{"/v1/tasks?limit=0", "parameter limit"},
		{"/v1/tasks?page_token=zzz", "parameter page_token"},
	} {
		if code, body := httpDo(t, "GET", base+c.url, ""); code != 400 || !strings.Contains(fmt.Sprint(body), c.want) {
			t.Errorf("%s: %d %v", c.url, code, body)
		}
	}
	if code, body := httpDo(t, "POST", base+"/v1/agents/nobody/tasks", `{"message":"x"}`); code != 404 {
		t.Errorf("unknown agent: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", base+"/v1/agents/a/tasks", `{"message":""}`); code != 400 || !strings.Contains(fmt.Sprint(body), `"message"`) {
		t.Errorf("empty message: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", base+"/v1/tasks/"+ids[0]+"/cancel", ""); code != 409 || !strings.Contains(fmt.Sprint(body), "completed") {
		t.Errorf("cancel a completed task: %d %v", code, body)
	}
	if code, _ := httpDo(t, "GET", base+"/v1/tasks/t_missing", ""); code != 404 {
		t.Errorf("missing task: %d", code)
	}

	code, out, errOut := runCLI("tasks", "list", "--server", base, "--status", "completed")
	if code != 0 || strings.Count(out, "completed") != 3 {
		t.Fatalf("tasks list: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI("tasks", "show", ids[1], "--server", base)
	if code != 0 || !strings.Contains(out, "state completed") || !strings.Contains(out, "2. [attempt 1] assistant: [work] job 1") {
		t.Fatalf("tasks show: %d %s", code, out)
	}
	if code, out, _ = runCLI("tasks", "dlq", "--server", base); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("tasks dlq: %d %q", code, out)
	}
	if code, _, errOut = runCLI("tasks", "requeue", ids[0], "--server", base); code != 2 || !strings.Contains(errOut, "not on the dead-letter list") {
		t.Fatalf("requeue a completed task: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI("tasks", "cancel", "t_missing", "--server", base); code != 2 || !strings.Contains(errOut, "no task") {
		t.Fatalf("cancel missing: %d %s", code, errOut)
	}
}

// queue settings come from the config, apply live on reload, and a
// --queue-* flag (or its variable) overrides the config.
func TestQueueSettingsLiveAndOverridden(t *testing.T) {
	bin := buildBinary(t)
	doc := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\nqueue: {workers: %d, max_retries: 5}\n"
	cfg := writeConfig(t, fmt.Sprintf(doc, 2))
	p := startServe(t, bin, "--config", cfg, "--database", "sqlite://h.db", "--queue-initial-delay", "3s")
	queueOf := func() map[string]any {
		_, h := httpDo(t, "GET", "http://"+p.addr+"/health", "")
		return h["queue"].(map[string]any)
	}
	if q := queueOf(); q["workers"] != 2.0 || q["max_retries"] != 5.0 || q["initial_delay"] != "3s" || q["stale_threshold"] != "5m0s" {
		t.Fatalf("%v", q)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(doc, 7)), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for queueOf()["workers"] != 7.0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue.workers not applied live: %v", queueOf())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, errOut := runCLI("serve", "--queue-workers", "0"); code != 2 || !strings.Contains(errOut, "--queue-workers must be between 1 and 1024") {
		t.Fatalf("bad flag: %d %s", code, errOut)
	}
}

// A synchronous message that reaches a tool needing approval returns the
// pending approval at once; the approval survives a restart; only an
// operator key may decide; approving runs the tool once and completes the
// turn into the session.
func TestApprovalAcrossRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { approvalAcrossRestart(t, "sqlite://"+filepath.Join(t.TempDir(), "h.db")) })
	t.Run("postgres", func(t *testing.T) { approvalAcrossRestart(t, testsvc.Postgres(t)) })
}

func approvalAcrossRestart(t *testing.T, db string) {
	bin := buildBinary(t)
	fx, world := newWorld(t)
	model := llmtest.NewOpenAI(t)
	model.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastTool != "" {
			return llmtest.Reply{Text: "paid: " + r.LastTool}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"key":"invoice-7"}`}}}
	}
	const ops, viewer = "operator-key-0123456789", "viewer-key-0123456789"
	cfg := writeConfig(t, fmt.Sprintf(`llms:
  m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}
agents:
  a: {llm: m, tools: [pay]}
tools:
  pay: {type: http, url: "%s/?key={key}", description: pays an invoice, require_approval: true, approval_prompt: "Pay this invoice?"}
server:
  port: 0
  auth: {api_keys: [{name: ops, key: %s, role: operator}, {name: watcher, key: %s, role: viewer}]}
`, model.URL, world.URL, ops, viewer))
	p := startServe(t, bin, "--config", cfg, "--database", db)
	code, body := httpDo(t, "POST", "http://"+p.addr+"/v1/agents/a/messages", `{"message":"pay invoice 7"}`, viewer)
	approval, _ := body["approval"].(map[string]any)
	if code != 202 || body["state"] != "input_required" || approval["tool"] != "pay" || approval["prompt"] != "Pay this invoice?" {
		t.Fatalf("message: %d %v", code, body)
	}
	id, session := body["task_id"].(string), body["session_id"].(string)
	_, page := httpDo(t, "GET", "http://"+p.addr+"/tasks?status=input_required", "", viewer)
	if tasks := page["tasks"].([]any); len(tasks) != 1 || tasks[0].(map[string]any)["approval"] == nil {
		t.Fatalf("waiting list: %v", page)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p = startServe(t, bin, "--config", cfg, "--database", db)
	base := "http://" + p.addr
	if code, _ := httpDo(t, "POST", base+"/v1/tasks/"+id+"/approve", ""); code != 401 {
		t.Fatalf("approve without a key: %d", code)
	}
	if code, _, errOut := runCLI("tasks", "approve", id, "--server", base, "--api-key", viewer); code != 2 || !strings.Contains(errOut, "operator role") {
		t.Fatalf("approve as viewer: %d %s", code, errOut)
	}
	if code, out, errOut := runCLI("tasks", "list", "--status", "input_required", "--server", base, "--api-key", viewer); code != 0 || !strings.Contains(out, `approve pay{"key":"invoice-7"}? Pay this invoice?`) {
		t.Fatalf("tasks list: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runCLI("tasks", "approve", id, "--server", base, "--api-key", ops, "--reason", "budgeted"); code != 0 {
		t.Fatalf("approve: %d %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, task := httpDo(t, "GET", base+"/v1/tasks/"+id, "", viewer)
		if task["state"] == "completed" {
			d := task["decisions"].(map[string]any)["c1"].(map[string]any)
			if d["by"] != "ops" || d["reason"] != "budgeted" || d["approved"] != true {
				t.Fatalf("decision %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not completed: %v", task)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fx.mu.Lock()
	applied := fx.applied["invoice-7"]
	fx.mu.Unlock()
	_, sess := httpDo(t, "GET", base+"/v1/sessions/"+session, "", viewer)
	msgs := sess["messages"].([]any)
	if applied != 1 || len(msgs) != 4 || msgs[3].(map[string]any)["content"] != "paid: applied" {
		t.Fatalf("effect applied %d times; session %v", applied, sess)
	}
}
