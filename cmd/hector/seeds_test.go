package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

const seedKey1, seedKey2 = "seed-key-one-0123456789", "seed-key-two-0123456789"

// Every document under examples/seeds, as the original Hector's guides
// show it, validates (suggesting hector config migrate) and is served by
// hector serve as the guide says: the model behind OPENAI_BASE_URL answers,
// a named database is the machine's PostgreSQL (the guides' hosts do not
// resolve here), the pointer's Consul key is loaded from a real Consul.
// --port 0 (HECTOR_LISTEN_PORT for the JSON one) overrides the seeds'
// port 8080.
func TestSeedDocumentsServe(t *testing.T) {
	bin := buildBinary(t)
	seeds, _ := filepath.Glob("../../examples/seeds/*.yaml")
	json, _ := filepath.Glob("../../examples/seeds/*.json")
	seeds = append(seeds, json...)
	if len(seeds) < 11 {
		t.Fatalf("only %d seed documents", len(seeds))
	}
	for _, file := range seeds {
		file, _ := filepath.Abs(file)
		t.Run(filepath.Base(file), func(t *testing.T) {
			model := llmtest.NewOpenAI(t)
			for k, v := range map[string]string{"OPENAI_API_KEY": "sk-seed", "OPENAI_BASE_URL": model.URL + "/v1",
				"API_KEY_1": seedKey1, "API_KEY_2": seedKey2, "DB_PASSWORD": "secret"} {
				t.Setenv(k, v) // for validate here and the server, which inherits them
			}
			code, out, errOut := runCLI("validate", file)
			if code != 0 {
				t.Fatalf("validate: %s %s", out, errOut)
			}
			seed := seedCase(filepath.Base(file))
			if !strings.Contains(out, seed.validateSays) {
				t.Fatalf("validate says:\n%s\nwant %q", out, seed.validateSays)
			}
			dir := t.TempDir()
			args := append([]string{"--config", file, "--port", "0"}, seed.args(t)...)
			if strings.HasSuffix(file, ".json") { // the variable instead of the flag
				t.Setenv("HECTOR_LISTEN_PORT", "0")
				args = slices.DeleteFunc(args, func(a string) bool { return a == "--port" || a == "0" })
			}
			if seed.setup != nil {
				seed.setup(t, dir, model)
			}
			p := startServeIn(t, bin, dir, nil, args...)
			if !strings.HasPrefix(p.addr, "127.0.0.1:") || strings.HasSuffix(p.addr, ":8080") {
				t.Fatalf("--port 0 did not override the seed's port: %s", p.addr)
			}
			base := "http://" + p.addr
			if code, h := httpDo(t, "GET", base+"/health", ""); code != 200 || h["database"] != "connected" {
				t.Fatalf("health: %d %v", code, h)
			}
			seed.check(t, base)
		})
	}
}

// seed is what one seed document is checked for.
type seed struct {
	validateSays string
	args         func(*testing.T) []string
	setup        func(t *testing.T, dir string, model *llmtest.Server)
	check        func(t *testing.T, base string)
}

func noArgs(*testing.T) []string { return nil }

func onPostgres(t *testing.T) []string { return []string{"--database", testsvc.Postgres(t)} }

// askSeed has the agent answer through the fake model.
func askSeed(t *testing.T, base, agent string, key ...string) {
	t.Helper()
	code, body := httpDo(t, "POST", base+"/v1/agents/"+agent+"/messages", `{"message":"hello"}`, key...)
	if code != 200 || body["reply"] != "reply to: hello" {
		t.Fatalf("%s: %d %v", agent, code, body)
	}
}

func card(t *testing.T, base, agent string) map[string]any {
	t.Helper()
	code, c := httpDo(t, "GET", base+"/agents/"+agent+"/.well-known/agent-card.json", "")
	if code != 200 {
		t.Fatalf("card: %d %v", code, c)
	}
	return c
}

func seedCase(name string) seed {
	const migrate = "hector config migrate"
	switch name {
	case "distributed-configuration.yaml", "distributed-configuration.json":
		return seed{validateSays: migrate, args: noArgs, check: func(t *testing.T, base string) {
			askSeed(t, base, "assistant")
			if c := card(t, base, "assistant"); c["name"] != "Production Assistant" {
				t.Fatalf("card name %v", c["name"])
			}
			_, list := httpDo(t, "GET", base+"/v1/agents", "")
			if a := list["agents"].([]any)[0].(map[string]any); a["name"] != "assistant" || a["display_name"] != "Production Assistant" {
				t.Fatalf("/v1/agents: %v", list)
			}
		}}
	case "distributed-a2a.yaml":
		return seed{validateSays: migrate, args: noArgs, check: func(t *testing.T, base string) {
			askSeed(t, base, "orchestrator")
		}}
	case "deployment-compose.yaml", "deployment-postgres.yaml":
		return seed{validateSays: "read as database.url postgres://REDACTED@", args: onPostgres, check: func(t *testing.T, base string) {
			askSeed(t, base, "assistant")
		}}
	case "deployment-kubernetes.yaml":
		return seed{validateSays: "search is a built-in tool", args: noArgs, check: func(t *testing.T, base string) {
			askSeed(t, base, "assistant")
			if c := card(t, base, "assistant"); c["capabilities"].(map[string]any)["streaming"] != true {
				t.Fatalf("card capabilities %v", c["capabilities"])
			}
		}}
	case "deployment-observability.yaml":
		return seed{validateSays: "server.observability: the original Hector's place", args: noArgs, check: func(t *testing.T, base string) {
			askSeed(t, base, "assistant")
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufioCopy(&b, resp)
			if !strings.Contains(b.String(), `hector_agent_requests_total{agent="assistant",app="",status="completed"} 1`) {
				t.Fatalf("metrics:\n%s", b.String())
			}
		}}
	case "deployment-jwt.yaml":
		return seed{validateSays: "server.auth.enabled: the original Hector's spelling", args: noArgs, check: func(t *testing.T, base string) {
			if code, _ := httpDo(t, "POST", base+"/v1/agents/assistant/messages", `{"message":"hello"}`); code != 401 {
				t.Fatalf("without a token: %d", code)
			}
		}}
	case "deployment-api-keys.yaml":
		return seed{validateSays: "a key written as a plain string", args: noArgs, check: func(t *testing.T, base string) {
			if code, _ := httpDo(t, "POST", base+"/v1/agents/assistant/messages", `{"message":"hello"}`); code != 401 {
				t.Fatalf("without a key: %d", code)
			}
			askSeed(t, base, "assistant", seedKey1)
			askSeed(t, base, "assistant", seedKey2)
		}}
	case "deployment-pointer.yaml":
		var consul *testsvc.Proc
		return seed{validateSays: "a pointer to consul hector/production/config",
			args: func(t *testing.T) []string {
				consul = testsvc.Consul(t)
				doc := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: consul}}\n")
				flags := []string{"--config-type", "consul", "--config-endpoints", consul.Addr(), "--config", "hector/production/config"}
				if code, out, errOut := runCLI(append([]string{"config", "put", doc}, flags...)...); code != 0 {
					t.Fatalf("put: %s %s", out, errOut)
				}
				// The guide's address does not resolve here: the flag wins.
				return []string{"--config-endpoints", consul.Addr()}
			},
			check: func(t *testing.T, base string) {
				if code, body := httpDo(t, "POST", base+"/v1/agents/a/messages", `{"message":"hi"}`); code != 200 || body["reply"] != "[consul] hi" {
					t.Fatalf("from the pointer's key: %d %v", code, body)
				}
			}}
	case "operations-approval.yaml":
		return seed{validateSays: "valid (1 agents, 1 llms, 1 tools)", args: noArgs,
			setup: func(t *testing.T, dir string, model *llmtest.Server) {
				script := "#!/bin/sh\necho deployed > deployed.txt\necho deployed to production\n"
				if err := os.WriteFile(filepath.Join(dir, "deploy.sh"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				model.Respond = func(r llmtest.Request) llmtest.Reply {
					if r.LastTool != "" {
						return llmtest.Reply{Text: "done: " + r.LastTool}
					}
					return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "deploy_prod", Args: `{}`}}}
				}
			},
			check: func(t *testing.T, base string) { approveSeed(t, base) }}
	}
	return seed{validateSays: "an unknown seed: add it to seedCase", args: noArgs, check: func(*testing.T, string) {}}
}

// approveSeed runs the operations guide's approval flow: the call waits
// in input_required, listed at /tasks?status=input_required; approved, the
// fixed command runs and the turn completes with its output.
func approveSeed(t *testing.T, base string) {
	code, body := httpDo(t, "POST", base+"/v1/agents/assistant/messages", `{"message":"deploy"}`)
	if code != 202 || body["state"] != "input_required" {
		t.Fatalf("message: %d %v", code, body)
	}
	id := body["task_id"].(string)
	if _, page := httpDo(t, "GET", base+"/tasks?status=input_required", ""); len(page["tasks"].([]any)) != 1 {
		t.Fatalf("waiting list: %v", page)
	}
	if code, b := httpDo(t, "POST", base+"/tasks/"+id+"/approve", ""); code != 200 {
		t.Fatalf("approve: %d %v", code, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, task := httpDo(t, "GET", base+"/v1/tasks/"+id, "")
		if task["state"] == "completed" {
			b, _ := json.Marshal(task)
			if !strings.Contains(string(b), "done: deployed to production") {
				t.Fatalf("task %s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not completed: %v", task)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A pointer to a pointer (itself, say) ends at no document: validate and
// serve say so instead of failing on the second pointer's config: key.
func TestPointerChainsAreRefused(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "self.yaml")
	if err := os.WriteFile(self, []byte("config: {provider: file, key: "+self+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", self}, {"serve", "--config", self}} {
		code, out, errOut := runCLI(args...)
		if code == 0 || !strings.Contains(out+errOut, "which is a pointer too: point it at the configuration itself") {
			t.Errorf("%v: %d %s %s", args, code, out, errOut)
		}
	}
}
