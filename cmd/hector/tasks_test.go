package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func httpDo(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
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
