package server_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// otlpReceiver is an OTLP/gRPC trace collector in the test process: the
// real exporter of the server under test sends to it.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []span
}

// span is a received span, reduced to what the tests assert on.
type span struct {
	service, name, trace, id, parent string
	attrs                            map[string]string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := attrMap(rs.Resource.GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, span{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId),
					id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId), attrs: attrMap(s.Attributes)})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.Value
		switch {
		case v.GetArrayValue() != nil:
			var parts []string
			for _, e := range v.GetArrayValue().Values {
				parts = append(parts, e.GetStringValue())
			}
			m[kv.Key] = strings.Join(parts, ",")
		case v.GetIntValue() != 0:
			m[kv.Key] = fmt.Sprint(v.GetIntValue())
		default:
			m[kv.Key] = v.GetStringValue()
		}
	}
	return m
}

// find returns the spans named name (a prefix) of service.
func (r *otlpReceiver) find(service, name string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.service == service && strings.HasPrefix(s.name, name) {
			out = append(out, s)
		}
	}
	return out
}

func tracingConfig(addr, service string) string {
	return fmt.Sprintf("observability: {tracing: {enabled: true, endpoint: %q, insecure: true, service_name: %s}}\n", addr, service)
}

// One turn with a tool call is exported as a span tree: the server span of
// the request, invoke_agent under it, chat for each model call and
// execute_tool for the call, with the GenAI attributes; the HTTP tool and
// a remote A2A agent (another Hector) receive the trace in traceparent,
// and a caller's traceparent is continued.
func TestTracesOfATurn(t *testing.T) {
	recv := newOTLPReceiver(t)
	var tpMu sync.Mutex
	var toolTraceparent, toolTracestate string
	toolSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tpMu.Lock()
		toolTraceparent, toolTracestate = r.Header.Get("Traceparent"), r.Header.Get("Tracestate")
		tpMu.Unlock()
		fmt.Fprint(w, "tool says hi")
	}))
	t.Cleanup(toolSrv.Close)
	far := newHector(t, "llms: {e: {provider: echo}}\nagents: {helper: {llm: e}}\nserver: {port: 0, shutdown_timeout: 5s}\n"+tracingConfig(recv.addr, "far"))
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, fmt.Sprintf(`llms:
  gpt: {provider: openai, model: test-model, base_url: %s/v1, api_key: k, max_retries: 0}
agents:
  assistant: {llm: gpt, tools: [web]}
  helper: {type: a2a, url: %q}
tools:
  web: {type: http, url: %q}
server: {port: 0, shutdown_timeout: 5s}
`, fake.URL, far.base, toolSrv.URL)+tracingConfig(recv.addr, "near"))
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "call-1", Name: "web", Args: `{}`}}}, llmtest.Reply{Text: "done"})
	if resp, body := h.call("POST", "/v1/agents/assistant/messages", "", `{"message":"go"}`, "Content-Type", "application/json",
		"Tracestate", "vendor=callers-own"); resp.StatusCode != 200 || !strings.Contains(body, `"reply":"done"`) {
		t.Fatalf("turn: %d %s", resp.StatusCode, body)
	}
	var root, turn span
	eventually(t, "the turn's spans are exported", func() string {
		servers, turns := recv.find("near", "POST /v1/agents/{name}/messages"), recv.find("near", "invoke_agent assistant")
		if len(servers) != 1 || len(turns) != 1 || len(recv.find("near", "chat test-model")) != 2 || len(recv.find("near", "execute_tool web")) != 1 {
			return fmt.Sprintf("%d server, %d turn spans so far", len(servers), len(turns))
		}
		root, turn = servers[0], turns[0]
		return ""
	})
	if turn.parent != root.id || turn.trace != root.trace || turn.attrs["gen_ai.operation.name"] != "invoke_agent" || turn.attrs["gen_ai.conversation.id"] == "" {
		t.Errorf("invoke_agent %+v under %+v", turn, root)
	}
	if root.attrs["http.route"] != "/v1/agents/{name}/messages" || root.attrs["http.response.status_code"] != "200" {
		t.Errorf("the server span: %+v", root.attrs)
	}
	chats := recv.find("near", "chat test-model")
	for i, want := range []string{"tool_calls", "stop"} {
		c := chats[i]
		if c.parent != turn.id || c.attrs["gen_ai.provider.name"] != "openai" || c.attrs["gen_ai.request.model"] != "test-model" ||
			c.attrs["gen_ai.usage.input_tokens"] != "10" || c.attrs["gen_ai.usage.output_tokens"] != "5" || c.attrs["gen_ai.response.finish_reasons"] != want {
			t.Errorf("chat %d: %+v", i, c)
		}
		if _, ok := c.attrs["gen_ai.input.messages"]; ok {
			t.Errorf("content was captured without capture_content")
		}
	}
	tool := recv.find("near", "execute_tool web")[0]
	if tool.parent != turn.id || tool.attrs["gen_ai.tool.name"] != "web" || tool.attrs["gen_ai.tool.call.id"] != "call-1" {
		t.Errorf("execute_tool: %+v", tool)
	}
	for _, name := range []string{"INSERT messages"} { // a new session has no history to read
		db := recv.find("near", name)
		if len(db) == 0 || db[0].trace != root.trace || db[0].attrs["db.system.name"] != "sqlite" || db[0].attrs["db.collection.name"] != "messages" {
			t.Errorf("no %s span in the turn's trace: %+v", name, db)
		}
	}
	tpMu.Lock()
	if !strings.Contains(toolTraceparent, root.trace) {
		t.Errorf("the HTTP tool got traceparent %q, not of trace %s", toolTraceparent, root.trace)
	}
	if toolTracestate != "" {
		t.Errorf("the caller's tracestate reached the tool: %q", toolTracestate)
	}
	tpMu.Unlock()

	// A caller's trace is continued, across the remote agent too.
	callerTrace := "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := h.call("POST", "/v1/agents/helper/messages", "", `{"message":"hi"}`, "Content-Type", "application/json",
		"Traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	if resp.StatusCode != 200 {
		t.Fatalf("remote turn: %d %s", resp.StatusCode, body)
	}
	eventually(t, "the remote agent's spans join the caller's trace", func() string {
		for _, s := range recv.find("far", "invoke_agent helper") {
			if s.trace == callerTrace {
				return ""
			}
		}
		return fmt.Sprintf("far's spans: %+v", recv.find("far", ""))
	})
	if reloads := recv.find("near", "config_reload"); len(reloads) == 0 || reloads[0].attrs["hector.reload.result"] != "applied" {
		t.Errorf("no config_reload span for the startup: %+v", reloads)
	}
}

// Tracing applies live: switched on by a reload, with capture_content the
// messages ride on the chat span; the stdout exporter writes JSON spans.
func TestTracingAppliesLive(t *testing.T) {
	recv := newOTLPReceiver(t)
	var out testsvc.Buffer
	base := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0, shutdown_timeout: 5s}\n"
	h := newHectorWith(t, base, func(o *app.Options) { o.TraceOutput = &out })
	if r := h.send("a", "", "untraced"); r.status != 200 {
		t.Fatal(r.raw)
	}
	h.write(base + fmt.Sprintf("observability: {tracing: {enabled: true, endpoint: %q, insecure: true, service_name: live, capture_content: true}}\n", recv.addr))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("switching tracing on: %+v", o)
	}
	if r := h.send("a", "", "traced secret-free words"); r.status != 200 {
		t.Fatal(r.raw)
	}
	eventually(t, "the chat span carries the messages", func() string {
		for _, s := range recv.find("live", "chat") {
			if strings.Contains(s.attrs["gen_ai.input.messages"], "traced secret-free words") && strings.Contains(s.attrs["gen_ai.output.messages"], "traced") {
				return ""
			}
		}
		return fmt.Sprintf("%+v", recv.find("live", ""))
	})
	for _, s := range recv.find("live", "") {
		if strings.Contains(fmt.Sprint(s.attrs), "untraced") {
			t.Errorf("a turn from before tracing was on was exported: %+v", s)
		}
	}
	h.write(base + "observability: {tracing: {enabled: true, exporter: stdout}}\n")
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("switching to stdout: %+v", o)
	}
	if r := h.send("a", "", "to stdout"); r.status != 200 {
		t.Fatal(r.raw)
	}
	eventually(t, "the stdout exporter writes the spans", func() string {
		if !strings.Contains(out.String(), `"Name":"invoke_agent a"`) {
			return out.String()
		}
		return ""
	})
	h.write(base + "observability: {tracing: {enabled: true, sampling_rate: 2}}\n")
	if o := h.next(); o.Result != "rejected" || !strings.Contains(fmt.Sprint(o.Errors), "observability.tracing.sampling_rate") {
		t.Errorf("a sampling rate of 2: %+v", o)
	}
}

// Every response names its request (X-Request-Id, the caller's when
// sensible), and a line logged for the request carries request_id and,
// when traced, trace_id and span_id.
func TestRequestIDsAndTraceIDsInLogs(t *testing.T) {
	recv := newOTLPReceiver(t)
	fake := llmtest.NewOpenAI(t)
	var logs testsvc.Buffer
	h := newHectorWith(t, fmt.Sprintf("llms: {gpt: {provider: openai, model: m, base_url: %s/v1, api_key: k, max_retries: 0}}\nagents: {a: {llm: gpt}}\nserver: {port: 0}\n", fake.URL)+
		tracingConfig(recv.addr, "logs"), func(o *app.Options) { o.LogOutput = &logs })
	fake.Push(llmtest.Reply{Status: 400})
	resp, _ := h.call("POST", "/v1/agents/a/messages", "", `{"message":"x"}`, "Content-Type", "application/json", "X-Request-Id", "req-42.a")
	if resp.Header.Get("X-Request-Id") != "req-42.a" {
		t.Errorf("X-Request-Id answered %q", resp.Header.Get("X-Request-Id"))
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "turn failed") {
			line = l
		}
	}
	if !strings.Contains(line, "request_id=req-42.a") || !regexp.MustCompile(`trace_id=[0-9a-f]{32} span_id=[0-9a-f]{16}`).MatchString(line) {
		t.Errorf("the turn's log line: %q", line)
	}
	for _, sent := range []string{"", "has spaces in it", strings.Repeat("x", 129)} {
		resp, _ := h.call("GET", "/health", "", "", "X-Request-Id", sent)
		if got := resp.Header.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
			t.Errorf("for X-Request-Id %q the answer names %q, not a new id", sent, got)
		}
	}
}

// A delegation is a turn inside the tool call that made it: invoke_agent
// of the delegate under execute_tool of the delegating agent.
func TestTracesOfADelegation(t *testing.T) {
	recv := newOTLPReceiver(t)
	h := newHector(t, `
llms: {echo: {provider: echo}}
agents:
  boss: {llm: echo, tools: [ask_helper], allowed_delegates: [helper]}
  helper: {llm: echo, instruction: helper}
tools:
  ask_helper: {type: agent, agent: helper}
server: {port: 0, shutdown_timeout: 5s}
`+tracingConfig(recv.addr, "delegation"))
	if r := h.send("boss", "", `/tool ask_helper {"message": "hi"}`); r.status != 200 {
		t.Fatalf("delegation: %d %s", r.status, r.raw)
	}
	eventually(t, "the delegate's turn is under the tool call", func() string {
		calls, helpers := recv.find("delegation", "execute_tool ask_helper"), recv.find("delegation", "invoke_agent helper")
		if len(calls) != 1 || len(helpers) != 1 {
			return fmt.Sprintf("%d tool calls, %d delegate turns", len(calls), len(helpers))
		}
		if helpers[0].parent != calls[0].id || helpers[0].trace != calls[0].trace {
			return fmt.Sprintf("delegate %+v not under %+v", helpers[0], calls[0])
		}
		return ""
	})
}
