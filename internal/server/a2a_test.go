package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"

	legacy "github.com/a2aproject/a2a-go/a2a"
	legacyclient "github.com/a2aproject/a2a-go/a2aclient"
	legacycard "github.com/a2aproject/a2a-go/a2aclient/agentcard"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/server"
	"github.com/hector-run/hector/internal/testsvc"
)

// a2aConfig serves agent assistant on the fake LLM at url, with a tool
// that needs approval; extra is appended (more agents, a2a settings).
func a2aConfig(url, extra string) string {
	return fmt.Sprintf(`name: a2a
llms:
  gpt: {provider: openai, model: m, base_url: %s/v1, api_key: test}
  echo: {provider: echo}
agents:
  assistant:
    llm: gpt
    description: Answers questions.
    tools: [pay]
tools:
  pay: {type: command, allowed_commands: [echo], require_approval: true, approval_prompt: "Pay it?"}
server: {port: 0, shutdown_timeout: 5s}
%s`, url, extra)
}

// newA2ARig serves a2aConfig on a fake LLM and returns it, the server, a
// context that ends within 20s and a JSON-RPC 1.0 client of assistant.
func newA2ARig(t *testing.T) (*llmtest.Server, *hector, context.Context, *a2aclient.Client) {
	t.Helper()
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return fake, h, ctx, h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
}

// keyedA2AConfig is a2aConfig with two keys: vera (viewer) and otto
// (operator).
func keyedA2AConfig(url, extra string) string {
	return strings.Replace(a2aConfig(url, extra), "server: {port: 0, shutdown_timeout: 5s}",
		fmt.Sprintf("server: {port: 0, shutdown_timeout: 5s, auth: {api_keys: [{name: vera, key: %s, role: viewer}, {name: otto, key: %s, role: operator}]}}", viewerKey, operatorKey), 1)
}

// transports are the four ways into an agent: both bindings of both
// protocol versions, each through the official v2 client.
var transports = []struct {
	name    string
	binding a2a.TransportProtocol
	version a2a.ProtocolVersion
	opts    []a2aclient.FactoryOption
}{
	{"jsonrpc-1.0", a2a.TransportProtocolJSONRPC, a2a.Version, nil},
	{"rest-1.0", a2a.TransportProtocolHTTPJSON, a2a.Version, nil},
	{"jsonrpc-0.3", a2a.TransportProtocolJSONRPC, a2av0.Version, []a2aclient.FactoryOption{a2av0.WithJSONRPCTransport(a2av0.JSONRPCTransportConfig{})}},
	{"rest-0.3", a2a.TransportProtocolHTTPJSON, a2av0.Version, []a2aclient.FactoryOption{a2av0.WithRESTTransport(a2av0.RESTTransportConfig{})}},
}

// card fetches an agent's card as a client would.
func (h *hector) card(agent string) *a2a.AgentCard {
	h.t.Helper()
	resolver := &agentcard.Resolver{CardParser: a2av0.NewAgentCardParser()}
	card, err := resolver.Resolve(context.Background(), h.base+"/agents/"+agent)
	if err != nil {
		h.t.Fatalf("card of %s: %v", agent, err)
	}
	return card
}

// a2aClient connects to agent over one binding and version named by the
// agent's card.
func (h *hector) a2aClient(agent string, binding a2a.TransportProtocol, version a2a.ProtocolVersion, opts ...a2aclient.FactoryOption) *a2aclient.Client {
	h.t.Helper()
	for _, iface := range h.card(agent).SupportedInterfaces {
		if iface.ProtocolBinding == binding && iface.ProtocolVersion == version {
			c, err := a2aclient.NewFromEndpoints(context.Background(), []*a2a.AgentInterface{iface}, opts...)
			if err != nil {
				h.t.Fatal(err)
			}
			return c
		}
	}
	h.t.Fatalf("card of %s names no %s %s interface", agent, binding, version)
	return nil
}

// bearer is ctx with the A2A client sending Authorization: Bearer token.
func bearer(ctx context.Context, token string) context.Context {
	return a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Authorization": {"Bearer " + token}})
}

func userMessage(text string) *a2a.SendMessageRequest {
	return &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(text))}
}

func artifactText(t *a2a.Task) string {
	var b strings.Builder
	for _, a := range t.Artifacts {
		for _, p := range a.Parts {
			b.WriteString(p.Text())
		}
	}
	return b.String()
}

func TestAgentCards(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	card := h.card("assistant")
	if card.Name != "assistant" || card.Description != "Answers questions." || !card.Capabilities.Streaming || !card.Capabilities.PushNotifications {
		t.Fatalf("card: %+v", card)
	}
	if len(card.SupportedInterfaces) != 4 || card.SupportedInterfaces[0].URL != h.base+"/a2a/assistant" {
		t.Fatalf("interfaces: %+v", card.SupportedInterfaces)
	}
	if len(card.Skills) != 1 || card.Skills[0].ID != "assistant" || len(card.SecuritySchemes) != 0 {
		t.Fatalf("skills %+v, security %+v", card.Skills, card.SecuritySchemes)
	}
	// One agent: the well-known card is its card, in both formats.
	_, root := h.get("/.well-known/agent-card.json")
	if root["name"] != "assistant" || root["protocolVersion"] != "0.3" || root["url"] != h.base+"/a2a/assistant" || root["supportedInterfaces"] == nil {
		t.Fatalf("root card: %v", root)
	}
	if code, _ := h.get("/agents/nobody/.well-known/agent-card.json"); code != 404 {
		t.Fatalf("unknown agent's card: %d", code)
	}
	// Several agents: an index; a public URL and API keys show in cards.
	h.write(strings.Replace(a2aConfig(fake.URL, "a2a: {public_url: \"https://agents.example.com/\"}\n"), "server: {port: 0, shutdown_timeout: 5s}",
		"server: {port: 0, shutdown_timeout: 5s, auth: {api_keys: [{name: vera, key: "+viewerKey+", role: viewer}]}}", 1))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	card = h.card("assistant")
	if card.SupportedInterfaces[0].URL != "https://agents.example.com/a2a/assistant" || card.SecuritySchemes["bearer"] == nil {
		t.Fatalf("card after reload: %+v %+v", card.SupportedInterfaces[0], card.SecuritySchemes)
	}
	resp, _ := h.call("POST", "/a2a/assistant", "", `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}`)
	if resp.StatusCode != 401 {
		t.Fatalf("A2A call without a key: %d", resp.StatusCode)
	}
}

func TestA2AEveryBindingAndVersion(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := h.a2aClient("assistant", tc.binding, tc.version, tc.opts...)
			// send: blocks until the durable task completes
			res, err := c.SendMessage(ctx, userMessage("hello "+tc.name))
			if err != nil {
				t.Fatal(err)
			}
			task, ok := res.(*a2a.Task)
			if !ok || task.Status.State != a2a.TaskStateCompleted || artifactText(task) != "reply to: hello "+tc.name {
				t.Fatalf("send: %#v", res)
			}
			// the A2A task is the Hector task
			code, ht := h.get("/v1/tasks/" + string(task.ID))
			if code != 200 || ht["state"] != "completed" || ht["session_id"] != task.ContextID {
				t.Fatalf("task over REST: %d %v", code, ht)
			}
			got, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: task.ID})
			if err != nil || got.Status.State != a2a.TaskStateCompleted || len(got.History) != 2 {
				t.Fatalf("get: %+v %v", got, err)
			}
			// stream: the task, working, the model's text as artifact
			// chunks, the reply as the last chunk, completed
			var kinds []string
			var reply, built string
			var chunks int
			for ev, err := range c.SendStreamingMessage(ctx, userMessage("stream "+tc.name)) {
				if err != nil {
					t.Fatal(err)
				}
				switch e := ev.(type) {
				case *a2a.Task:
					kinds = append(kinds, "task:"+string(e.Status.State))
				case *a2a.TaskStatusUpdateEvent:
					kinds = append(kinds, "status:"+string(e.Status.State))
				case *a2a.TaskArtifactUpdateEvent:
					kinds = append(kinds, "artifact")
					chunks++
					if e.Artifact.ID != "response" {
						t.Errorf("artifact event: %+v", e)
					}
					if !e.Append {
						built = ""
					}
					built += e.Artifact.Parts[0].Text()
					if e.LastChunk {
						reply = e.Artifact.Parts[0].Text()
					}
				}
			}
			if reply != "reply to: stream "+tc.name || !strings.HasPrefix(kinds[0], "task:") ||
				kinds[len(kinds)-2] != "artifact" || kinds[len(kinds)-1] != "status:"+string(a2a.TaskStateCompleted) {
				t.Fatalf("stream: %v (reply %q)", kinds, reply)
			}
			// The fake model streams its reply in pieces: they arrive as
			// chunks, and the artifact ends as the reply.
			if chunks < 3 || built != reply {
				t.Fatalf("%d artifact chunks building %q", chunks, built)
			}
			// a follow-up in the same context continues the conversation
			msg := userMessage("again")
			msg.Message.ContextID = task.ContextID
			if _, err := c.SendMessage(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if n := fake.Requests()[len(fake.Requests())-1].NumMessage; n != 3 {
				t.Fatalf("follow-up saw %d messages, want the earlier turn too (3)", n)
			}
			if _, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: "t_missing"}); !errorSays(tc.name, err, "not found") {
				t.Fatalf("missing task: %v", err)
			}
		})
	}
}

// TestA2ALegacyClient uses the v0 line of the official client, which
// speaks only the 0.3 wire format.
func TestA2ALegacyClient(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		switch {
		case r.LastUser == "cancel me":
			return llmtest.Reply{Text: "never", Delay: 30 * time.Second}
		case r.LastUser == "take your time":
			return llmtest.Reply{Text: "slow answer", Delay: 400 * time.Millisecond}
		case r.LastUser == "pay" && r.LastTool == "":
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo paid"}`}}}
		case r.LastTool != "":
			return llmtest.Reply{Text: "tool said " + strings.TrimSpace(r.LastTool)}
		}
		return llmtest.Reply{Text: "reply to: " + r.LastUser}
	}
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	card, err := legacycard.DefaultResolver.Resolve(ctx, h.base+"/a2a/assistant")
	if err != nil {
		t.Fatal(err)
	}
	if card.URL != h.base+"/a2a/assistant" || card.PreferredTransport != legacy.TransportProtocolJSONRPC {
		t.Fatalf("0.3 card: %+v", card)
	}
	c, err := legacyclient.NewFromCard(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	send := func(text string, blocking bool) *legacy.Task {
		t.Helper()
		res, err := c.SendMessage(ctx, &legacy.MessageSendParams{Message: legacy.NewMessage(legacy.MessageRoleUser, legacy.TextPart{Text: text}),
			Config: &legacy.MessageSendConfig{Blocking: &blocking}})
		if err != nil {
			t.Fatal(err)
		}
		return res.(*legacy.Task)
	}
	// message/send
	task := send("old client", true)
	if task.Status.State != legacy.TaskStateCompleted || task.Artifacts[0].Parts[0].(legacy.TextPart).Text != "reply to: old client" {
		t.Fatalf("message/send: %#v", task)
	}
	// message/stream
	var states []legacy.TaskState
	for ev, err := range c.SendStreamingMessage(ctx, &legacy.MessageSendParams{Message: legacy.NewMessage(legacy.MessageRoleUser, legacy.TextPart{Text: "old stream"})}) {
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := ev.(*legacy.TaskStatusUpdateEvent); ok {
			states = append(states, e.Status.State)
			if e.Final != (e.Status.State == legacy.TaskStateCompleted) {
				t.Errorf("final flag on %s: %v", e.Status.State, e.Final)
			}
		}
	}
	if len(states) == 0 || states[len(states)-1] != legacy.TaskStateCompleted {
		t.Fatalf("message/stream states: %v", states)
	}
	// tasks/get
	got, err := c.GetTask(ctx, &legacy.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != legacy.TaskStateCompleted {
		t.Fatalf("tasks/get: %+v %v", got, err)
	}
	// tasks/resubscribe
	slow := send("take your time", false)
	var last legacy.Event
	for ev, err := range c.ResubscribeToTask(ctx, &legacy.TaskIDParams{ID: slow.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	if st, ok := last.(*legacy.TaskStatusUpdateEvent); !ok || st.Status.State != legacy.TaskStateCompleted || !st.Final {
		t.Fatalf("tasks/resubscribe ended with %#v", last)
	}
	// tasks/cancel
	doomed := send("cancel me", false)
	waitState(t, h, string(doomed.ID), "running")
	if got, err := c.CancelTask(ctx, &legacy.TaskIDParams{ID: doomed.ID}); err != nil || got.Status.State != legacy.TaskStateCanceled {
		t.Fatalf("tasks/cancel: %+v %v", got, err)
	}
	// input-required -> approve -> completed, with a push config set on
	// the waiting task (tasks/pushNotificationConfig/set)
	waiting := send("pay", true)
	if waiting.Status.State != legacy.TaskStateInputRequired {
		t.Fatalf("want input-required: %+v", waiting.Status)
	}
	if _, err := c.SetTaskPushConfig(ctx, &legacy.TaskPushConfig{TaskID: waiting.ID, Config: legacy.PushConfig{ID: "p", URL: hook.URL + "/v0", Token: "legacy"}}); err != nil {
		t.Fatal(err)
	}
	if cs, err := c.ListTaskPushConfig(ctx, &legacy.ListTaskPushConfigParams{TaskID: waiting.ID}); err != nil || len(cs) != 1 {
		t.Fatalf("tasks/pushNotificationConfig/list: %+v %v", cs, err)
	}
	res, err := c.SendMessage(ctx, &legacy.MessageSendParams{Message: legacy.NewMessageForTask(legacy.MessageRoleUser, waiting, legacy.TextPart{Text: "approve"})})
	if err != nil {
		t.Fatal(err)
	}
	if done := res.(*legacy.Task); done.Status.State != legacy.TaskStateCompleted || done.Artifacts[0].Parts[0].(legacy.TextPart).Text != "tool said paid" {
		t.Fatalf("after approval: %+v", done)
	}
	hook.waitCompleted(t, 0)
}

func TestA2AResubscribeAndCancel(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		switch r.LastUser {
		case "take your time":
			return llmtest.Reply{Text: "slow answer", Delay: 400 * time.Millisecond}
		case "cancel me":
			return llmtest.Reply{Text: "never", Delay: 30 * time.Second}
		}
		return llmtest.Reply{Text: "reply to: " + r.LastUser}
	}
	h := newHector(t, a2aConfig(fake.URL, ""))
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := h.a2aClient("assistant", tc.binding, tc.version, tc.opts...)
			// The client goes away after the first event; the task goes on,
			// and a resubscription sees it to the end.
			sctx, stop := context.WithCancel(ctx)
			var id a2a.TaskID
			for ev, err := range c.SendStreamingMessage(sctx, userMessage("take your time")) {
				if err != nil {
					t.Fatal(err)
				}
				id = ev.(*a2a.Task).ID
				break
			}
			stop()
			var last a2a.Event
			for ev, err := range c.SubscribeToTask(ctx, &a2a.SubscribeToTaskRequest{ID: id}) {
				if err != nil {
					t.Fatal(err)
				}
				last = ev
			}
			if st, ok := last.(*a2a.TaskStatusUpdateEvent); !ok || st.Status.State != a2a.TaskStateCompleted {
				t.Fatalf("resubscribed stream ended with %#v", last)
			}
			for _, err := range c.SubscribeToTask(ctx, &a2a.SubscribeToTaskRequest{ID: id}) {
				if !errorSays(tc.name, err, "nothing to subscribe to") {
					t.Fatalf("subscribe to a completed task: %v", err)
				}
				break
			}
			// Cancel a running task: it stops at once.
			req := userMessage("cancel me")
			req.Config = &a2a.SendMessageConfig{ReturnImmediately: true}
			res, err := c.SendMessage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			id = res.(*a2a.Task).ID
			waitState(t, h, string(id), "running")
			start := time.Now()
			task, err := c.CancelTask(ctx, &a2a.CancelTaskRequest{ID: id})
			if err != nil || task.Status.State != a2a.TaskStateCanceled {
				t.Fatalf("cancel: %+v %v", task, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("cancel took %v", d)
			}
			if _, err := c.CancelTask(ctx, &a2a.CancelTaskRequest{ID: id}); !errorSays(tc.name, err, "cancel") {
				t.Fatalf("second cancel: %v", err)
			}
		})
	}
}

// errorSays reports whether err is an error saying want. The 0.3 REST
// client of a2a-go turns every error into a bare "server error" (it
// reads the body, not the status), so over it only the failure counts.
func errorSays(transport string, err error, want string) bool {
	if err == nil {
		return false
	}
	return transport == "rest-0.3" || strings.Contains(err.Error(), want)
}

// waitState polls the REST API until task id is in state.
func waitState(t *testing.T, h *hector, id, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, task := h.get("/v1/tasks/" + id); task["state"] == state {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("task %s never reached %s", id, state)
}

func TestA2AApproval(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	pay := llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "call-1", Name: "pay", Args: `{"command":"echo paid"}`}}}
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := h.a2aClient("assistant", tc.binding, tc.version, tc.opts...)
			// Approved by an A2A message on the task.
			fake.Push(pay, llmtest.Reply{Text: "paid it"})
			res, err := c.SendMessage(ctx, userMessage("pay the bill"))
			if err != nil {
				t.Fatal(err)
			}
			task := res.(*a2a.Task)
			if task.Status.State != a2a.TaskStateInputRequired || !strings.Contains(task.Status.Message.Parts[0].Text(), "Pay it?") {
				t.Fatalf("want input-required with the prompt, got %+v", task.Status)
			}
			bad := a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.NewTextPart("maybe"))
			if _, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: bad}); !errorSays(tc.name, err, "approve") {
				t.Fatalf("an unclear answer: %v", err)
			}
			yes := a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.NewTextPart("approve"))
			res, err = c.SendMessage(ctx, &a2a.SendMessageRequest{Message: yes})
			if err != nil {
				t.Fatal(err)
			}
			if done := res.(*a2a.Task); done.Status.State != a2a.TaskStateCompleted || artifactText(done) != "paid it" {
				t.Fatalf("after approval: %+v", done.Status)
			}
			if fake.Requests()[len(fake.Requests())-1].LastTool != "paid\n" {
				t.Fatalf("the tool did not run: %+v", fake.Requests()[len(fake.Requests())-1])
			}
			// Streamed: input-required ends the stream; the approval API
			// resumes the task; a resubscription sees it complete.
			fake.Push(pay, llmtest.Reply{Text: "paid again"})
			var last *a2a.TaskStatusUpdateEvent
			var id a2a.TaskID
			for ev, err := range c.SendStreamingMessage(ctx, userMessage("pay again")) {
				if err != nil {
					t.Fatal(err)
				}
				if tk, ok := ev.(*a2a.Task); ok {
					id = tk.ID
				}
				if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
					last = st
				}
			}
			if last == nil || last.Status.State != a2a.TaskStateInputRequired {
				t.Fatalf("stream ended with %+v", last)
			}
			if r := h.post("/v1/tasks/"+string(id)+"/approve", `{}`); r.status != 200 {
				t.Fatalf("approve over REST: %d %s", r.status, r.raw)
			}
			got, _, err := waitTask(ctx, c, id, a2a.TaskStateCompleted)
			if err != nil || artifactText(got) != "paid again" {
				t.Fatalf("after REST approval: %+v %v", got, err)
			}
		})
	}
}

func waitTask(ctx context.Context, c *a2aclient.Client, id a2a.TaskID, want a2a.TaskState) (*a2a.Task, int, error) {
	for i := 0; ; i++ {
		task, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: id})
		if err != nil || task.Status.State == want {
			return task, i, err
		}
		select {
		case <-ctx.Done():
			return task, i, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Deciding on a tool call, and cancelling another principal's task, need
// the operator role.
func TestA2AApprovalNeedsOperator(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, keyedA2AConfig(fake.URL, ""))
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}}, llmtest.Reply{Text: "ok"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	withKey := func(key string) context.Context { return bearer(ctx, key) }
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	if _, err := c.SendMessage(ctx, userMessage("no key")); err == nil {
		t.Fatal("a call without a key succeeded")
	}
	res, err := c.SendMessage(withKey(operatorKey), userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	yes := &a2a.SendMessageRequest{Message: a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.NewTextPart("approve"))}
	if _, err := c.SendMessage(withKey(viewerKey), yes); err == nil || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("a viewer approved: %v", err)
	}
	if _, err := c.CancelTask(withKey(viewerKey), &a2a.CancelTaskRequest{ID: task.ID}); err == nil || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("a viewer cancelled a task over A2A: %v", err)
	}
	res, err = c.SendMessage(withKey(operatorKey), yes)
	if err != nil || res.(*a2a.Task).Status.State != a2a.TaskStateCompleted {
		t.Fatalf("operator approval: %+v %v", res, err)
	}
	_, body := h.call("GET", "/v1/tasks/"+string(task.ID), viewerKey, "")
	if !strings.Contains(body, `"by":"otto"`) {
		t.Fatalf("decision not recorded with the key's name: %s", body)
	}
}

// webhook records the push notifications it receives.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	got    []a2a.StreamResponse
	tokens []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var sr a2a.StreamResponse
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &sr); err != nil {
			t.Errorf("push body %s: %v", b, err)
		}
		w.mu.Lock()
		w.got = append(w.got, sr)
		w.tokens = append(w.tokens, r.Header.Get("A2A-Notification-Token"))
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// waitCompleted waits until the webhook has more than after
// notifications, the last of them for a completed task.
func (w *webhook) waitCompleted(t *testing.T, after int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := w.states(); len(s) > after && s[len(s)-1] == a2a.TaskStateCompleted {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("webhook got %v, want completed after %d", w.states(), after)
}

func (w *webhook) states() []a2a.TaskState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []a2a.TaskState
	for _, sr := range w.got {
		if e, ok := sr.Event.(*a2a.TaskStatusUpdateEvent); ok {
			out = append(out, e.Status.State)
		}
	}
	return out
}

func TestA2APushNotifications(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	// SSRF protection: a webhook on loopback is refused by default.
	req := userMessage("notify me")
	req.Config = &a2a.SendMessageConfig{PushConfig: &a2a.PushConfig{URL: hook.URL + "/hook", Token: "tok-1"}}
	if _, err := c.SendMessage(ctx, req); err == nil || !strings.Contains(err.Error(), "allow_private_networks") {
		t.Fatalf("loopback webhook: %v", err)
	}
	for _, u := range []string{"http://10.1.2.3/x", "http://169.254.169.254/latest", "ftp://example.com/x"} {
		req.Config.PushConfig.URL = u
		if _, err := c.SendMessage(ctx, req); err == nil {
			t.Fatalf("webhook %s accepted", u)
		}
	}
	h.write(a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	// With the message: every state change reaches the webhook.
	req.Config.PushConfig.URL = hook.URL + "/hook"
	res, err := c.SendMessage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := res.(*a2a.Task).ID
	hook.waitCompleted(t, 0)
	hook.mu.Lock()
	if hook.tokens[0] != "tok-1" {
		t.Errorf("token header: %q", hook.tokens[0])
	}
	n := len(hook.got)
	hook.mu.Unlock()
	// The config methods: list, get, delete.
	list, err := c.ListTaskPushConfigs(ctx, &a2a.ListTaskPushConfigRequest{TaskID: id})
	if err != nil || len(list) != 1 || list[0].ID != "default" || list[0].URL != hook.URL+"/hook" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := c.GetTaskPushConfig(ctx, &a2a.GetTaskPushConfigRequest{TaskID: id, ID: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTaskPushConfig(ctx, &a2a.DeleteTaskPushConfigRequest{TaskID: id, ID: "default"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTaskPushConfig(ctx, &a2a.GetTaskPushConfigRequest{TaskID: id, ID: "default"}); err == nil {
		t.Fatal("deleted config still there")
	}
	// Registered on a waiting task: the webhook hears the rest.
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c9", Name: "pay", Args: `{"command":"echo y"}`}}}, llmtest.Reply{Text: "ok"})
	res, err = c.SendMessage(ctx, userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := res.(*a2a.Task)
	if _, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: waiting.ID, ID: "later", URL: hook.URL + "/later"}); err != nil {
		t.Fatal(err)
	}
	if r := h.post("/v1/tasks/"+string(waiting.ID)+"/approve", `{}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	hook.waitCompleted(t, n)
	// A webhook that does not answer is tried three times, then counted
	// as failed.
	req = userMessage("to nowhere")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	req.Config = &a2a.SendMessageConfig{PushConfig: &a2a.PushConfig{URL: closed.URL + "/gone"}}
	if _, err := c.SendMessage(ctx, req); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, metrics := h.call("GET", "/metrics", "", "")
		if strings.Contains(metrics, `hector_a2a_push_notifications_total{result="failed"}`) &&
			strings.Contains(metrics, `hector_a2a_push_notifications_total{result="delivered"}`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, metrics := h.call("GET", "/metrics", "", "")
	t.Fatalf("push metrics missing:\n%s", metrics)
}

// TestA2AReloadAddsAgentWhileStreaming adds an agent while a client
// streams from another: the stream completes, and the new agent's card
// and endpoint work at once.
func TestA2AReloadAddsAgentWhileStreaming(t *testing.T) {
	fake, h, ctx, c := newA2ARig(t)
	fake.Push(llmtest.Reply{Text: "long answer", Delay: 600 * time.Millisecond})
	events := make(chan a2a.Event, 100)
	errc := make(chan error, 1)
	go func() {
		defer close(events)
		for ev, err := range c.SendStreamingMessage(ctx, userMessage("long question")) {
			if err != nil {
				errc <- err
				return
			}
			events <- ev
		}
	}()
	<-events // the task: the stream is open
	if code, _ := h.get("/agents/helper/.well-known/agent-card.json"); code != 404 {
		t.Fatalf("helper exists before the reload: %d", code)
	}
	h.write(strings.Replace(a2aConfig(fake.URL, ""), "tools:\n", "  helper: {llm: echo, description: Helps.}\ntools:\n", 1))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	hc := h.a2aClient("helper", a2a.TransportProtocolHTTPJSON, a2a.Version)
	res, err := hc.SendMessage(ctx, userMessage("hi helper"))
	if err != nil || res.(*a2a.Task).Status.State != a2a.TaskStateCompleted {
		t.Fatalf("new agent: %+v %v", res, err)
	}
	var last a2a.Event
	for ev := range events {
		last = ev
	}
	select {
	case err := <-errc:
		t.Fatalf("stream failed across the reload: %v", err)
	default:
	}
	if st, ok := last.(*a2a.TaskStatusUpdateEvent); !ok || st.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("stream ended with %#v", last)
	}
	// And removing it takes its endpoint away.
	h.write(a2aConfig(fake.URL, ""))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	if resp, _ := h.call("POST", "/a2a/helper", "", `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}`); resp.StatusCode != 404 {
		t.Fatalf("removed agent answers: %d", resp.StatusCode)
	}
}

func TestA2ABadRequests(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	for _, tc := range []struct{ body, hdr, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[]}}}`, "", "message.parts"},
		{`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"url":"http://x/y.png"}]}}}`, "", "parts[0]"},
		{`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","contextId":"has space","parts":[{"text":"x"}]}}}`, "", "contextId"},
		{`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","taskId":"t_nope","parts":[{"text":"x"}]}}}`, "", "not found"},
		{`{"jsonrpc":"2.0","id":1,"method":"Nope","params":{}}`, "", "-32601"},
		{`{not json`, "", "-32700"},
		{`{"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"id":"x"}}`, "2.0", "-32009"},
	} {
		var hdr []string
		if tc.hdr != "" {
			hdr = []string{"A2A-Version", tc.hdr}
		}
		_, body := h.call("POST", "/a2a/assistant", "", tc.body, hdr...)
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s: want %q in %s", tc.body, tc.want, body)
		}
	}
	if resp, _ := h.call("POST", "/a2a/nobody", "", `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}`); resp.StatusCode != 404 {
		t.Fatalf("unknown agent: %d", resp.StatusCode)
	}
}

// TestLocalDelegation: an agent tool reaches another agent of the same
// configuration, over /v1 and over A2A; a cycle of delegations stops at
// the depth limit instead of running forever.
func TestLocalDelegation(t *testing.T) {
	h := newHector(t, `
llms: {echo: {provider: echo}}
agents:
  boss: {llm: echo, tools: [ask_helper], allowed_delegates: [helper]}
  helper: {llm: echo, instruction: helper, tools: [ask_boss], allowed_delegates: [boss]}
tools:
  ask_helper: {type: agent, agent: helper}
  ask_boss: {type: agent, agent: boss}
server: {port: 0, shutdown_timeout: 5s}
`)
	r := h.send("boss", "", `/tool ask_helper {"message": "hi"}`)
	if r.status != 200 || r.body.Reply != "ask_helper: [helper] hi" {
		t.Fatalf("delegation: %d %s", r.status, r.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.a2aClient("boss", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(ctx, userMessage(`/tool ask_helper {"message": "over a2a"}`))
	if err != nil || artifactText(res.(*a2a.Task)) != "ask_helper: [helper] over a2a" {
		t.Fatalf("delegation in an A2A task: %+v %v", res, err)
	}
	// boss -> helper -> boss -> helper -> boss: the fifth is refused.
	msg := "x"
	for depth := 5; depth >= 0; depth-- { // innermost first
		tool := "ask_helper" // boss's tool, at even depths
		if depth%2 == 1 {
			tool = "ask_boss"
		}
		b, _ := json.Marshal(map[string]string{"message": msg})
		msg = "/tool " + tool + " " + string(b)
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	r = h.post("/v1/agents/boss/messages", string(b))
	if r.status != 200 || !strings.Contains(r.body.Reply, "chains of delegation stop at 4") {
		t.Fatalf("cycle: %d %s", r.status, r.raw)
	}
}

// TestA2AAcrossInstances: two servers on one PostgreSQL database. A task
// sent to one is followed from the other (resubscribe, get, cancel),
// whichever instance's worker runs it.
func TestA2AAcrossInstances(t *testing.T) {
	db := testsvc.Postgres(t)
	onPG := func(o *app.Options) { o.DatabaseURL = db }
	fake := llmtest.NewOpenAI(t)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastUser == "cancel me" {
			return llmtest.Reply{Text: "never", Delay: 30 * time.Second}
		}
		return llmtest.Reply{Text: "reply to: " + r.LastUser, Delay: 300 * time.Millisecond}
	}
	a := newHectorWith(t, a2aConfig(fake.URL, ""), onPG)
	b := newHectorWith(t, a2aConfig(fake.URL, ""), onPG)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca := a.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	cb := b.a2aClient("assistant", a2a.TransportProtocolHTTPJSON, a2a.Version)
	req := userMessage("hello")
	req.Config = &a2a.SendMessageConfig{ReturnImmediately: true}
	res, err := ca.SendMessage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := res.(*a2a.Task).ID
	var states []a2a.TaskState
	for ev, err := range cb.SubscribeToTask(ctx, &a2a.SubscribeToTaskRequest{ID: id}) {
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
			states = append(states, st.Status.State)
		}
	}
	if len(states) == 0 || states[len(states)-1] != a2a.TaskStateCompleted {
		t.Fatalf("followed from the other instance: %v", states)
	}
	// A blocking send on one instance returns when the task completes,
	// wherever it ran.
	start := time.Now()
	res, err = cb.SendMessage(ctx, userMessage("blocking"))
	if err != nil || artifactText(res.(*a2a.Task)) != "reply to: blocking" {
		t.Fatalf("blocking send: %+v %v", res, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("blocking send took %v", d)
	}
	// Cancel through the instance that does not run it (or does: either
	// way it stops at once).
	req = userMessage("cancel me")
	req.Config = &a2a.SendMessageConfig{ReturnImmediately: true}
	res, err = ca.SendMessage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id = res.(*a2a.Task).ID
	waitState(t, a, string(id), "running")
	start = time.Now()
	for _, c := range []*a2aclient.Client{ca, cb} {
		task, err := c.CancelTask(ctx, &a2a.CancelTaskRequest{ID: id})
		if err == nil && task.Status.State == a2a.TaskStateCanceled {
			break
		}
	}
	waitState(t, b, string(id), "canceled")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel across instances took %v", d)
	}
}

// TestA2APushGuardAtDial: a webhook registered while private networks
// were allowed gets nothing once they are not: the sender refuses the
// address when it dials, not only when the webhook is registered.
func TestA2APushGuardAtDial(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}}, llmtest.Reply{Text: "ok"})
	res, err := c.SendMessage(ctx, userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := res.(*a2a.Task)
	// Two webhooks on loopback: by address, and by a name that resolves
	// to it.
	named := newWebhook(t)
	_, port, _ := net.SplitHostPort(named.Listener.Addr().String())
	for _, u := range []string{hook.URL + "/x", "http://localhost:" + port + "/y"} {
		if _, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: waiting.ID, ID: u, URL: u}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for (len(hook.states()) == 0 || len(named.states()) == 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range []*webhook{hook, named} {
		if s := w.states(); len(s) != 1 || s[0] != a2a.TaskStateInputRequired {
			t.Fatalf("webhook got %v", s)
		}
	}
	h.write(a2aConfig(fake.URL, ""))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	failed := h.pushFailed()
	if r := h.post("/v1/tasks/"+string(waiting.ID)+"/approve", `{}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	// The task completes; its states reach neither webhook: the dialer
	// refuses 127.0.0.1, and localhost once resolved.
	if _, _, err := waitTask(ctx, c, waiting.ID, a2a.TaskStateCompleted); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if h.pushFailed() >= failed+2 {
			if s, n := hook.states(), named.states(); len(s) != 1 || len(n) != 1 {
				t.Fatalf("the guard let %v and %v through", s, n)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no refused deliveries (failed %d, before %d); webhooks got %v and %v", h.pushFailed(), failed, hook.states(), named.states())
}

// TestA2AListTasks: the agent's tasks, newest first, by context and
// state, in pages.
func TestA2AListTasks(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, strings.Replace(a2aConfig(fake.URL, ""), "tools:\n", "  other: {llm: echo}\ntools:\n", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, binding := range []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON} {
		c := h.a2aClient("assistant", binding, a2a.Version)
		var contextID string
		var afterFirst time.Time
		for i := range 3 {
			req := userMessage(fmt.Sprint("list ", i))
			req.Message.ContextID = contextID
			res, err := c.SendMessage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			contextID = res.(*a2a.Task).ContextID
			if i == 0 { // the next whole second: a2a-go's REST client sends seconds
				afterFirst = time.Now().Truncate(time.Second).Add(time.Second)
				time.Sleep(time.Until(afterFirst) + 5*time.Millisecond)
			}
		}
		// statusTimestampAfter filters before paging: full pages, and a
		// totalSize that counts only what it selects.
		recent, err := c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, PageSize: 1, StatusTimestampAfter: &afterFirst})
		if err != nil || len(recent.Tasks) != 1 || recent.TotalSize != 2 || recent.NextPageToken == "" {
			t.Fatalf("%s statusTimestampAfter, first page: %+v %v", binding, recent, err)
		}
		recent, err = c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, PageSize: 1, StatusTimestampAfter: &afterFirst, PageToken: recent.NextPageToken})
		if err != nil || len(recent.Tasks) != 1 || recent.NextPageToken != "" {
			t.Fatalf("%s statusTimestampAfter, second page: %+v %v", binding, recent, err)
		}
		page, err := c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, PageSize: 2, IncludeArtifacts: true})
		if err != nil || len(page.Tasks) != 2 || page.TotalSize != 3 || page.NextPageToken == "" ||
			artifactText(page.Tasks[0]) != "reply to: list 2" {
			t.Fatalf("%s first page: %+v %v", binding, page, err)
		}
		rest, err := c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, PageSize: 2, PageToken: page.NextPageToken})
		if err != nil || len(rest.Tasks) != 1 || rest.NextPageToken != "" || len(rest.Tasks[0].Artifacts) != 0 {
			t.Fatalf("%s second page: %+v %v", binding, rest, err)
		}
		done, err := c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, Status: a2a.TaskStateCompleted})
		if err != nil || len(done.Tasks) != 3 {
			t.Fatalf("%s completed: %+v %v", binding, done, err)
		}
		if none, err := c.ListTasks(ctx, &a2a.ListTasksRequest{ContextID: contextID, Status: a2a.TaskStateFailed}); err != nil || len(none.Tasks) != 0 {
			t.Fatalf("%s failed: %+v %v", binding, none, err)
		}
		if _, err := c.ListTasks(ctx, &a2a.ListTasksRequest{PageToken: "nonsense"}); err == nil {
			t.Fatalf("%s: a bad page token was accepted", binding)
		}
	}
	// Another agent's tasks are not listed, nor reachable.
	o := h.a2aClient("other", a2a.TransportProtocolJSONRPC, a2a.Version)
	list, err := o.ListTasks(ctx, &a2a.ListTasksRequest{})
	if err != nil || len(list.Tasks) != 0 {
		t.Fatalf("other agent's list: %+v %v", list, err)
	}
}

// rpc posts a JSON-RPC call to agent assistant and returns the HTTP
// response, its Content-Type and the decoded body.
func (h *hector) rpc(method, params string) (int, string, map[string]any) {
	h.t.Helper()
	resp, body := h.call("POST", "/a2a/assistant", "", `{"jsonrpc":"2.0","id":"r1","method":"`+method+`","params":`+params+`}`,
		"Content-Type", "application/json")
	var out map[string]any
	_ = json.Unmarshal([]byte(body), &out)
	return resp.StatusCode, resp.Header.Get("Content-Type"), out
}

// rpcErrorCode is the code of a JSON-RPC error response, 0 if none.
func rpcErrorCode(out map[string]any) int {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

// waitingTask starts a task that waits for approval and returns its ID;
// once approved, the fake's Respond answers it.
func waitingTask(t *testing.T, fake *llmtest.Server, c *a2aclient.Client) a2a.TaskID {
	t.Helper()
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}})
	res, err := c.SendMessage(context.Background(), userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	if task.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("task is %s, want input-required", task.Status.State)
	}
	return task.ID
}

// TestA2APushConfigMethods: list gives [] (0.3) or {"configs": []} (1.0)
// when there is none; delete answers "result": null and is idempotent.
func TestA2APushConfigMethods(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(context.Background(), userMessage("hello"))
	if err != nil {
		t.Fatal(err)
	}
	id := string(res.(*a2a.Task).ID)
	_, _, out := h.rpc("tasks/pushNotificationConfig/list", `{"id":"`+id+`"}`)
	if list, ok := out["result"].([]any); !ok || len(list) != 0 {
		t.Fatalf("0.3 list of none: %v", out)
	}
	_, _, out = h.rpc("ListTaskPushNotificationConfigs", `{"taskId":"`+id+`"}`)
	if r, _ := out["result"].(map[string]any); r == nil || r["configs"] == nil || len(r["configs"].([]any)) != 0 {
		t.Fatalf("1.0 list of none: %v", out)
	}
	for _, call := range []struct{ method, params string }{
		{"DeleteTaskPushNotificationConfig", `{"taskId":"` + id + `","id":"nope"}`},
		{"tasks/pushNotificationConfig/delete", `{"id":"` + id + `","pushNotificationConfigId":"nope"}`},
	} {
		for range 2 { // idempotent
			_, _, out := h.rpc(call.method, call.params)
			if r, has := out["result"]; !has || r != nil || out["error"] != nil || out["id"] != "r1" {
				t.Fatalf("%s: %v", call.method, out)
			}
		}
	}
	// Of an unknown task: an error still.
	if _, _, out := h.rpc("DeleteTaskPushNotificationConfig", `{"taskId":"t_nope","id":"x"}`); rpcErrorCode(out) != -32001 {
		t.Fatalf("delete on an unknown task: %v", out)
	}
}

// TestA2ASubscribeRefusedBeforeStream: subscribing to an unknown or a
// finished task is answered with an error response, not a stream.
func TestA2ASubscribeRefusedBeforeStream(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(context.Background(), userMessage("hello"))
	if err != nil {
		t.Fatal(err)
	}
	done := string(res.(*a2a.Task).ID)
	for _, tc := range []struct {
		method, id string
		code       int
	}{
		{"SubscribeToTask", "t_nope", -32001}, {"SubscribeToTask", done, -32004},
		{"tasks/resubscribe", "t_nope", -32001}, {"tasks/resubscribe", done, -32004},
	} {
		status, ct, out := h.rpc(tc.method, `{"id":"`+tc.id+`"}`)
		if status != 200 || !strings.HasPrefix(ct, "application/json") || rpcErrorCode(out) != tc.code {
			t.Errorf("%s %s: %d %s %v", tc.method, tc.id, status, ct, out)
		}
	}
	for _, tc := range []struct {
		method, path string
		status       int
		reason       string
	}{
		{"POST", "/a2a/assistant/tasks/t_nope:subscribe", 404, "TASK_NOT_FOUND"},
		{"GET", "/a2a/assistant/tasks/t_nope:subscribe", 404, "TASK_NOT_FOUND"},
		{"POST", "/a2a/assistant/tasks/" + done + ":subscribe", 400, "UNSUPPORTED_OPERATION"},
		{"POST", "/a2a/assistant/v1/tasks/t_nope:subscribe", 404, "TASK_NOT_FOUND"},
		{"POST", "/a2a/assistant/v1/tasks/" + done + ":subscribe", 400, "UNSUPPORTED_OPERATION"},
	} {
		resp, body := h.call(tc.method, tc.path, "", "", "Content-Type", "application/json")
		if resp.StatusCode != tc.status || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(body, tc.reason) {
			t.Errorf("%s %s: %d %s %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestA2AInvalidParams: requests that are valid JSON but not valid A2A
// are invalid params (-32602), naming what is wrong.
func TestA2AInvalidParams(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(context.Background(), userMessage("hello"))
	if err != nil {
		t.Fatal(err)
	}
	id := string(res.(*a2a.Task).ID)
	for _, tc := range []struct{ method, params, want string }{
		{"SendMessage", `{"message":{"role":"ROLE_USER","parts":[{"text":"x"}]}}`, "messageId"},
		{"SendMessage", `{"message":{"messageId":"m1","parts":[{"text":"x"}]}}`, "role"},
		{"SendStreamingMessage", `{"message":{"messageId":"m1","parts":[{"text":"x"}]}}`, "role"},
		{"SendMessage", `{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"video":"x"}]}}`, "part"},
		{"SendMessage", `{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"x"}]},"configuration":{"historyLength":-1}}`, "historyLength"},
		{"message/send", `{"message":{"kind":"message","role":"user","parts":[{"kind":"text","text":"x"}]}}`, "messageId"},
		{"message/send", `{"message":{"kind":"message","messageId":"m1","parts":[{"kind":"text","text":"x"}]}}`, "role"},
		{"message/stream", `{"message":{"kind":"message","messageId":"m1","parts":[{"kind":"text","text":"x"}]}}`, "role"},
		{"message/send", `{"message":{"kind":"message","messageId":"m1","role":"user","parts":[{"kind":"video","text":"x"}]}}`, "part"},
		{"GetTask", `{"id":"` + id + `","historyLength":-1}`, "historyLength"},
		{"tasks/get", `{"id":"` + id + `","historyLength":-1}`, "historyLength"},
	} {
		status, ct, out := h.rpc(tc.method, tc.params)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != 200 || !strings.HasPrefix(ct, "application/json") || rpcErrorCode(out) != -32602 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: %d %s %v", tc.method, tc.params, status, ct, out)
		}
	}
	resp, body := h.call("GET", "/a2a/assistant/tasks/"+id+"?historyLength=-1", "", "")
	if resp.StatusCode != 400 || !strings.Contains(body, "historyLength") {
		t.Errorf("REST historyLength -1: %d %s", resp.StatusCode, body)
	}
}

// TestA2ARESTBodies: 0.3 HTTP+JSON bodies take proto JSON's snake_case
// names and refuse unknown fields; a body over server.max_body_bytes is
// 413 on every binding.
func TestA2ARESTBodies(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, strings.Replace(a2aConfig(fake.URL, ""), "shutdown_timeout: 5s", "shutdown_timeout: 5s, max_body_bytes: 4096", 1))
	post := func(path, body string) (int, string) {
		resp, b := h.call("POST", "/a2a/assistant"+path, "", body, "Content-Type", "application/json")
		return resp.StatusCode, b
	}
	status, body := post("/v1/message:send", `{"message":{"message_id":"m-snake","context_id":"ctx-snake","role":"ROLE_USER","content":[{"text":"hi"}]},"configuration":{"blocking":true,"history_length":1}}`)
	var task struct {
		Task struct {
			ContextID string `json:"contextId"`
			History   []any  `json:"history"`
		} `json:"task"`
	}
	if err := json.Unmarshal([]byte(body), &task); status != 200 || err != nil || task.Task.ContextID != "ctx-snake" || len(task.Task.History) != 1 {
		t.Fatalf("snake_case 0.3 body: %d %s", status, body)
	}
	// The proto name of the message field, request, is the message too.
	if status, body := post("/v1/message:send", `{"request":{"messageId":"m2","contextId":"ctx-snake","role":"ROLE_USER","content":[{"text":"again"}]}}`); status != 200 {
		t.Fatalf("proto name request: %d %s", status, body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"message":{"messageId":"m3","role":"ROLE_USER","content":[{"text":"x"}],"bogus":1}}`, "bogus"},
		{`{"message":{"messageId":"m3","message_id":"m4","role":"ROLE_USER","content":[{"text":"x"}]}}`, "twice"},
		{`{"message":{"messageId":"m3","role":"ROLE_USER","parts":[{"kind":"text","text":"x"}]}}`, "parts"},
	} {
		if status, body := post("/v1/message:send", tc.body); status != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", tc.body, status, body)
		}
	}
	// Metadata and data parts keep their own names.
	status, body = post("/v1/message:send", `{"message":{"messageId":"m5","role":"ROLE_USER","metadata":{"my_key":1},"content":[{"data":{"data":{"snake_case":true}}}]}}`)
	if status != 200 || !strings.Contains(body, "snake_case") {
		t.Fatalf("data part: %d %s", status, body)
	}
	big := `{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"` + strings.Repeat("x", 5000) + `"}]}}`
	for _, path := range []string{"/message:send", "/v1/message:send", "/message:stream"} {
		if status, body := post(path, big); status != 413 || !strings.Contains(body, "max_body_bytes") {
			t.Errorf("%s over the limit: %d %s", path, status, body)
		}
	}
	// In each binding's own error shape.
	if status, body := post("", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":`+big+`}`); status != 413 ||
		!strings.Contains(body, "max_body_bytes") || !strings.Contains(body, `"jsonrpc":"2.0"`) || !strings.Contains(body, "-32600") {
		t.Errorf("JSON-RPC over the limit: %d %s", status, body)
	}
}

// TestAgentCardCaching: cards and the card index are cacheable for a
// minute, with an ETag that If-None-Match turns into 304 and that changes
// when a reload changes the agent.
func TestAgentCardCaching(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	cfg := strings.Replace(a2aConfig(fake.URL, ""), "tools:\n", "  other: {llm: echo}\ntools:\n", 1)
	h := newHector(t, cfg)
	paths := []string{"/agents/assistant/.well-known/agent-card.json", "/a2a/assistant/.well-known/agent-card.json", "/.well-known/agent-card.json"}
	etags := map[string]string{}
	for _, p := range paths {
		resp, body := h.call("GET", p, "", "")
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=60" || len(etag) < 10 || etag[0] != '"' || !strings.Contains(body, "Answers questions.") {
			t.Fatalf("%s: %d %v", p, resp.StatusCode, resp.Header)
		}
		resp, body = h.call("GET", p, "", "", "If-None-Match", etag)
		if resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != etag {
			t.Fatalf("%s with If-None-Match: %d %q", p, resp.StatusCode, body)
		}
		etags[p] = etag
	}
	h.write(strings.Replace(cfg, "Answers questions.", "Answers everything.", 1))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	for _, p := range paths {
		resp, body := h.call("GET", p, "", "", "If-None-Match", etags[p])
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == etags[p] || !strings.Contains(body, "Answers everything.") {
			t.Fatalf("%s after the reload: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
}

// pushFailed is the count of failed push deliveries in the metrics.
func (h *hector) pushFailed() int {
	h.t.Helper()
	_, m := h.call("GET", "/metrics", "", "")
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, `hector_a2a_push_notifications_total{result="failed"} `); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// TestA2APushDeliveriesRunConcurrently: three webhooks that never answer
// do not delay a healthy one; a webhook sees its task's states in order.
func TestA2APushDeliveriesRunConcurrently(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	hung := make(chan struct{})
	var hungCalls sync.WaitGroup
	hungCalls.Add(3)
	var once [3]sync.Once
	var stuck []*httptest.Server
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once[i].Do(hungCalls.Done)
			select {
			case <-hung:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		stuck = append(stuck, srv)
	}
	t.Cleanup(func() { close(hung) }) // before the servers close
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	first := waitingTask(t, fake, c)
	for i, srv := range stuck {
		if _, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: first, ID: fmt.Sprint("stuck", i), URL: srv.URL + "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	waitGroup := make(chan struct{})
	go func() { hungCalls.Wait(); close(waitGroup) }()
	select {
	case <-waitGroup: // all three deliveries are in flight, and stuck
	case <-time.After(5 * time.Second):
		t.Fatal("the three stuck webhooks were not all called: deliveries wait for one another")
	}
	second := waitingTask(t, fake, c)
	start := time.Now()
	if _, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: second, URL: hook.URL + "/ok"}); err != nil {
		t.Fatal(err)
	}
	for len(hook.states()) == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); len(hook.states()) == 0 || d > time.Second {
		t.Fatalf("the healthy webhook waited %v behind the stuck ones (got %v)", d, hook.states())
	} else {
		t.Logf("the healthy webhook was told in %v, beside three stuck ones", d)
	}
	// Approved, the task runs to the end; the webhook hears it in order.
	if r := h.post("/v1/tasks/"+string(second)+"/approve", `{}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	hook.waitCompleted(t, 0)
	order := map[a2a.TaskState]int{a2a.TaskStateInputRequired: 0, a2a.TaskStateSubmitted: 1, a2a.TaskStateWorking: 2, a2a.TaskStateCompleted: 3}
	states := hook.states()
	for i := 1; i < len(states); i++ {
		if order[states[i]] < order[states[i-1]] {
			t.Fatalf("states out of order: %v", states)
		}
	}
}

// TestA2APushSSRFRanges: a webhook on any special-purpose range is refused
// when registered, the ranges net.IP's predicates miss included.
func TestA2APushSSRFRanges(t *testing.T) {
	fake, _, ctx, c := newA2ARig(t)
	task := waitingTask(t, fake, c)
	for _, host := range []string{
		"100.64.0.1", "100.100.100.200", "100.127.255.254", // shared address space, a cloud metadata address
		"198.18.0.1", "198.19.255.254", // benchmarking
		"0.0.0.1", "0.1.2.3", // this network
		"240.0.0.1", "255.255.255.255", // reserved, broadcast
		"[64:ff9b::a9fe:a9fe]", "[64:ff9b::a00:1]", // NAT64 to 169.254.169.254, 10.0.0.1
		"127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "[fd00::1]", "[::ffff:127.0.0.1]",
	} {
		_, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: task, URL: "http://" + host + "/hook"})
		if err == nil || !strings.Contains(err.Error(), "allow_private_networks") {
			t.Errorf("webhook on %s: %v", host, err)
		}
		req := userMessage("notify")
		req.Config = &a2a.SendMessageConfig{PushConfig: &a2a.PushConfig{URL: "http://" + host + ":8080/hook"}}
		if _, err := c.SendMessage(ctx, req); err == nil || !strings.Contains(err.Error(), "allow_private_networks") {
			t.Errorf("webhook on %s with the message: %v", host, err)
		}
	}
	// A refused message starts no task.
	if list, err := c.ListTasks(ctx, &a2a.ListTasksRequest{}); err != nil || len(list.Tasks) != 1 {
		t.Fatalf("tasks after refused messages: %d %v", len(list.Tasks), err)
	}
	if list, err := c.ListTaskPushConfigs(ctx, &a2a.ListTaskPushConfigRequest{TaskID: task}); err != nil || len(list) != 0 {
		t.Fatalf("configs after refusals: %v %v", list, err)
	}
}

// TestA2APushLimits: a task takes 10 webhooks, a caller keeps 100 on
// unfinished tasks; past either, the error names the limit.
func TestA2APushLimits(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	var tasks []a2a.TaskID
	for range 11 {
		tasks = append(tasks, waitingTask(t, fake, c))
	}
	add := func(task a2a.TaskID, id string) error {
		_, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: task, ID: id, URL: hook.URL + "/" + id})
		return err
	}
	for i, task := range tasks[:10] {
		for j := range 10 {
			if err := add(task, fmt.Sprint("h", j)); err != nil {
				t.Fatalf("task %d, webhook %d: %v", i, j, err)
			}
		}
	}
	if err := add(tasks[0], "h0"); err != nil { // a replacement takes no new place
		t.Fatalf("replacing a webhook: %v", err)
	}
	if err := add(tasks[0], "h10"); err == nil || !strings.Contains(err.Error(), "10 push notification configs, the limit per task") {
		t.Fatalf("an 11th webhook on a task: %v", err)
	}
	if err := add(tasks[10], "h0"); err == nil || !strings.Contains(err.Error(), "100 push notification configs on unfinished tasks, the limit per caller") {
		t.Fatalf("a 101st webhook of the caller: %v", err)
	}
	req := userMessage("one more")
	req.Config = &a2a.SendMessageConfig{PushConfig: &a2a.PushConfig{URL: hook.URL + "/msg"}}
	if _, err := c.SendMessage(ctx, req); err == nil || !strings.Contains(err.Error(), "limit per caller") {
		t.Fatalf("a webhook with a message past the caller's limit: %v", err)
	}
	// A finished task's webhooks no longer count.
	if _, err := c.CancelTask(ctx, &a2a.CancelTaskRequest{ID: tasks[0]}); err != nil {
		t.Fatal(err)
	}
	if err := add(tasks[10], "h0"); err != nil {
		t.Fatalf("after a task finished: %v", err)
	}
}

// TestA2APushConfigWithMessage: a 1.0 message's webhook is taken whether
// it is named taskPushNotificationConfig (1.0) or pushNotificationConfig
// (the 0.3 name); naming both is an error.
func TestA2APushConfigWithMessage(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	hook := newWebhook(t)
	h := newHector(t, a2aConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	msg := `"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hi"}]}`
	for _, field := range []string{"pushNotificationConfig", "taskPushNotificationConfig"} {
		_, _, out := h.rpc("SendMessage", `{`+msg+`,"configuration":{"`+field+`":{"url":"`+hook.URL+`/`+field+`","token":"t"}}}`)
		result, _ := out["result"].(map[string]any)
		task, _ := result["task"].(map[string]any)
		if task == nil {
			t.Fatalf("%s: %v", field, out)
		}
		_, _, out = h.rpc("ListTaskPushNotificationConfigs", `{"taskId":"`+task["id"].(string)+`"}`)
		result, _ = out["result"].(map[string]any)
		configs, _ := result["configs"].([]any)
		if len(configs) != 1 || !strings.HasSuffix(configs[0].(map[string]any)["url"].(string), "/"+field) {
			t.Fatalf("%s: configs %v", field, out)
		}
	}
	_, _, out := h.rpc("SendMessage", `{`+msg+`,"configuration":{"pushNotificationConfig":{"url":"`+hook.URL+`"},"taskPushNotificationConfig":{"url":"`+hook.URL+`"}}}`)
	if rpcErrorCode(out) != -32602 {
		t.Fatalf("both names: %v", out)
	}
	// Over REST too.
	resp, body := h.call("POST", "/a2a/assistant/message:send", "", `{`+msg+`,"configuration":{"pushNotificationConfig":{"url":"`+hook.URL+`/rest"}}}`, "Content-Type", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("REST: %d %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		hook.mu.Lock()
		n := len(hook.got)
		hook.mu.Unlock()
		if n >= 3 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("webhook got %v", hook.states())
}

// TestRemoteAgentByNameFromIndex: a remote agent given the base URL of a
// Hector with several agents is the one of its name there; a name the
// index lacks fails with remote_agent_error and says what URL to use,
// with the URL's password redacted.
func TestRemoteAgentByNameFromIndex(t *testing.T) {
	far := newHector(t, `
llms: {echo: {provider: echo}}
agents:
  helper: {llm: echo, instruction: far helper}
  other: {llm: echo, instruction: far other}
server: {port: 0, shutdown_timeout: 5s}
`)
	withPassword := strings.Replace(far.base, "http://", "http://ann:s3cret-pw@", 1)
	h := newHector(t, fmt.Sprintf(`
agents:
  helper: {type: a2a, url: %q}
  stranger: {type: a2a, url: %q}
server: {port: 0, shutdown_timeout: 5s}
`, far.base, withPassword))
	if r := h.send("helper", "", "hi"); r.status != 200 || r.body.Reply != "[far helper] hi" {
		t.Fatalf("remote helper: %d %s", r.status, r.raw)
	}
	r := h.send("stranger", "", "hi")
	var e server.APIError
	_ = json.Unmarshal([]byte(r.raw), &e)
	if r.status != 502 || e.Error.Code != "remote_agent_error" || !strings.Contains(e.Error.Message, "/agents/NAME") ||
		strings.Contains(r.raw, "s3cret-pw") {
		t.Fatalf("an agent the index lacks: %d %s", r.status, r.raw)
	}
}

// A webhook's token and credentials are its registrant's: other callers
// see them REDACTED and can neither replace nor delete the webhook.
func TestA2APushConfigsBelongToTheirRegistrant(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, keyedA2AConfig(fake.URL, "a2a: {push: {allow_private_networks: true}}\n"))
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	as := func(key string) context.Context { return bearer(ctx, key) }
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(as(viewerKey), userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	hook := &a2a.PushConfig{TaskID: task.ID, ID: "mine", URL: "http://127.0.0.1:9/hook", Token: "vera-token",
		Auth: &a2a.PushAuthInfo{Scheme: "Bearer", Credentials: "vera-credentials"}}
	if _, err := c.CreateTaskPushConfig(as(viewerKey), hook); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetTaskPushConfig(as(operatorKey), &a2a.GetTaskPushConfigRequest{TaskID: task.ID, ID: "mine"})
	if err != nil || got.Token != "REDACTED" || got.Auth.Credentials != "REDACTED" || got.URL != hook.URL {
		t.Fatalf("another caller's view: %+v %v", got, err)
	}
	list, err := c.ListTaskPushConfigs(as(operatorKey), &a2a.ListTaskPushConfigRequest{TaskID: task.ID})
	if err != nil || len(list) != 1 || list[0].Token != "REDACTED" {
		t.Fatalf("another caller's list: %+v %v", list, err)
	}
	if mine, err := c.GetTaskPushConfig(as(viewerKey), &a2a.GetTaskPushConfigRequest{TaskID: task.ID, ID: "mine"}); err != nil || mine.Token != "vera-token" {
		t.Fatalf("the registrant's view: %+v %v", mine, err)
	}
	stolen := *hook
	stolen.URL, stolen.Token = "http://127.0.0.1:9/otto", "otto"
	if _, err := c.CreateTaskPushConfig(as(operatorKey), &stolen); err == nil || !strings.Contains(err.Error(), "another caller") {
		t.Fatalf("another caller replaced the webhook: %v", err)
	}
	if err := c.DeleteTaskPushConfig(as(operatorKey), &a2a.DeleteTaskPushConfigRequest{TaskID: task.ID, ID: "mine"}); err == nil {
		t.Fatal("another caller deleted the webhook")
	}
	if err := c.DeleteTaskPushConfig(as(viewerKey), &a2a.DeleteTaskPushConfigRequest{TaskID: task.ID, ID: "mine"}); err != nil {
		t.Fatalf("the registrant's delete: %v", err)
	}
}

// display_name (the original Hector's agents.*.name) names the card and
// the listings, while the key stays the id; streaming: false is what the
// card advertises; both apply live.
func TestAgentDisplayNameAndStreaming(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	cfg := strings.Replace(a2aConfig(fake.URL, ""), "    description: Answers questions.\n",
		"    description: Answers questions.\n    name: Support Desk\n    streaming: false\n", 1)
	h := newHector(t, cfg)
	card := h.card("assistant")
	if card.Name != "Support Desk" || card.Skills[0].ID != "assistant" || card.Skills[0].Name != "Support Desk" || card.Capabilities.Streaming {
		t.Fatalf("card: name %q, skills %+v, streaming %v", card.Name, card.Skills, card.Capabilities.Streaming)
	}
	if card.SupportedInterfaces[0].URL != h.base+"/a2a/assistant" {
		t.Fatalf("the URL keeps the key: %s", card.SupportedInterfaces[0].URL)
	}
	_, list := h.get("/v1/agents")
	if a := list["agents"].([]any)[0].(map[string]any); a["name"] != "assistant" || a["display_name"] != "Support Desk" {
		t.Fatalf("/v1/agents: %v", list)
	}
	h.write(strings.Replace(cfg, "    name: Support Desk\n    streaming: false\n", "    name: Help\n", 1))
	// The outcome lists the normalisation, at the line written.
	if o := h.next(); o.Result != reload.Applied || len(o.Warnings) != 1 ||
		o.Warnings[0] != "agents.assistant.name (line 9:5): the original Hector's spelling of display_name: read as agents.assistant.display_name" {
		t.Fatalf("reload: %+v", o)
	}
	if card := h.card("assistant"); card.Name != "Help" || !card.Capabilities.Streaming {
		t.Fatalf("after the reload: %q %v", card.Name, card.Capabilities.Streaming)
	}
}
