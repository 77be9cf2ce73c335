package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/hector-run/hector/internal/llm/llmtest"
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
				if err == nil || !strings.Contains(err.Error(), "nothing to subscribe to") {
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

func TestA2AApprovalNeedsOperator(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	cfg := strings.Replace(a2aConfig(fake.URL, ""), "server: {port: 0, shutdown_timeout: 5s}",
		fmt.Sprintf("server: {port: 0, shutdown_timeout: 5s, auth: {api_keys: [{name: vera, key: %s, role: viewer}, {name: otto, key: %s, role: operator}]}}", viewerKey, operatorKey), 1)
	h := newHector(t, cfg)
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}}, llmtest.Reply{Text: "ok"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	withKey := func(key string) context.Context {
		return a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Authorization": {"Bearer " + key}})
	}
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
	if _, err := c.SendMessage(ctx, userMessage("no key")); err == nil {
		t.Fatal("a call without a key succeeded")
	}
	res, err := c.SendMessage(withKey(viewerKey), userMessage("pay"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	yes := &a2a.SendMessageRequest{Message: a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.NewTextPart("approve"))}
	if _, err := c.SendMessage(withKey(viewerKey), yes); err == nil || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("a viewer approved: %v", err)
	}
	res, err = c.SendMessage(withKey(operatorKey), yes)
	if err != nil || res.(*a2a.Task).Status.State != a2a.TaskStateCompleted {
		t.Fatalf("operator approval: %+v %v", res, err)
	}
	_, body := h.call("GET", "/v1/tasks/"+string(task.ID), "", "")
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
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, a2aConfig(fake.URL, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.a2aClient("assistant", a2a.TransportProtocolJSONRPC, a2a.Version)
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
	onPG := func(o *Options) { o.DatabaseURL = db }
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
	if _, err := c.CreateTaskPushConfig(ctx, &a2a.PushConfig{TaskID: waiting.ID, URL: hook.URL + "/x"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(hook.states()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := hook.states(); len(s) != 1 || s[0] != a2a.TaskStateInputRequired {
		t.Fatalf("webhook got %v", s)
	}
	h.write(a2aConfig(fake.URL, ""))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	if r := h.post("/v1/tasks/"+string(waiting.ID)+"/approve", `{}`); r.status != 200 {
		t.Fatal(r.raw)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, m := h.call("GET", "/metrics", "", ""); strings.Contains(m, `hector_a2a_push_notifications_total{result="failed"}`) {
			if s := hook.states(); len(s) != 1 {
				t.Fatalf("the guard let %v through", s)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no refused delivery; webhook got %v", hook.states())
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
		for i := range 3 {
			req := userMessage(fmt.Sprint("list ", i))
			req.Message.ContextID = contextID
			res, err := c.SendMessage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			contextID = res.(*a2a.Task).ContextID
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
