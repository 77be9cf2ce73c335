package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDelegationAcrossProcesses runs two hector processes: the first
// serves agent helper; the second declares it as a remote (type a2a)
// agent and gives its agent boss a tool that delegates to it. A message
// to boss crosses to the other process over A2A, where it runs as a
// durable task.
func TestDelegationAcrossProcesses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	write := func(name, cfg string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := startServe(t, bin, "--config", write("b.yaml", `
llms: {echo: {provider: echo}}
agents:
  helper: {llm: echo, instruction: helper here, description: Helps out.}
server: {port: 0}
`), "--database", "sqlite://"+filepath.Join(dir, "b.db"))
	a := startServe(t, bin, "--config", write("a.yaml", fmt.Sprintf(`
llms: {echo: {provider: echo}}
agents:
  remote_helper: {type: a2a, url: "http://%s/a2a/helper", headers: {X-From: hector-a}}
  boss:
    llm: echo
    tools: [ask_helper]
    allowed_delegates: [remote_helper]
tools:
  ask_helper: {type: agent, agent: remote_helper, description: Ask the helper.}
server: {port: 0}
`, b.addr)), "--database", "sqlite://"+filepath.Join(dir, "a.db"))

	// The remote agent, called directly through the first process, twice
	// in one session: both turns go to one remote context.
	code, body := httpDo(t, "POST", "http://"+a.addr+"/v1/agents/remote_helper/messages", `{"message":"hello"}`)
	if code != 200 || body["reply"] != "[helper here] hello" {
		t.Fatalf("remote agent: %d %v", code, body)
	}
	session, _ := body["session_id"].(string)
	code, body = httpDo(t, "POST", "http://"+a.addr+"/v1/agents/remote_helper/messages", `{"message":"again","session_id":"`+session+`"}`)
	if code != 200 || body["reply"] != "[helper here] again" {
		t.Fatalf("remote agent, second turn: %d %v", code, body)
	}
	code, body = httpDo(t, "GET", "http://"+b.addr+"/v1/sessions/hector-"+session, "")
	if msgs, _ := body["messages"].([]any); code != 200 || len(msgs) != 4 {
		t.Fatalf("the remote context of session %s: %d %v", session, code, body)
	}
	// Delegation: boss's tool call (the echo model calls tools on
	// "/tool NAME ARGS") reaches helper in the other process.
	code, body = httpDo(t, "POST", "http://"+a.addr+"/v1/agents/boss/messages", `{"message":"/tool ask_helper {\"message\": \"what time is it?\"}"}`)
	if code != 200 || body["reply"] != "ask_helper: [helper here] what time is it?" {
		t.Fatalf("delegation: %d %v", code, body)
	}
	// Both calls ran as durable tasks of the other process.
	code, body = httpDo(t, "GET", "http://"+b.addr+"/v1/tasks?agent=helper", "")
	if tasks, _ := body["tasks"].([]any); code != 200 || len(tasks) != 3 {
		t.Fatalf("tasks in the helper's process: %d %v", code, body)
	}
	// A remote that is down fails the turn with its name, not a hang.
	b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	code, body = httpDo(t, "POST", "http://"+a.addr+"/v1/agents/boss/messages", `{"message":"/tool ask_helper {\"message\": \"anyone?\"}"}`)
	if reply, _ := body["reply"].(string); code != 200 || !strings.Contains(reply, "remote agent http://"+b.addr) {
		t.Fatalf("delegation to a stopped process: %d %v", code, body)
	}
}
