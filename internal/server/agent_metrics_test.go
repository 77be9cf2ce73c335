package server_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

// metricLines returns the /metrics lines of the named families, without
// the histograms' buckets.
func (h *hector) metricLines(families ...string) []string {
	h.t.Helper()
	_, body := h.call("GET", "/metrics", h.key, "")
	var out []string
	for _, l := range strings.Split(body, "\n") {
		for _, f := range families {
			if strings.HasPrefix(l, f) && !strings.Contains(l, "_bucket{") {
				out = append(out, l)
			}
		}
	}
	return out
}

// A turn with a tool call changes exactly the series it should: two model
// calls with the fake's usage (10 input and 5 output tokens each), one
// tool call, one completed turn; a failing model call and a REST turn that
// fails count as errors. A reload that removes the agent, its LLM and its
// tool stops exporting their series.
func TestAgentLLMAndToolMetrics(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, openAIConfig(fake.URL, "metered"))
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "echoer", Args: `{"command":"echo hi"}`}}}, llmtest.Reply{Text: "done"})
	if r := h.send("assistant", "", "go"); r.status != 200 || r.body.Reply != "done" {
		t.Fatalf("turn: %d %s", r.status, r.raw)
	}
	families := []string{"hector_llm_", "hector_agent_", "hector_tool_"}
	got := strings.Join(h.metricLines(families...), "\n")
	llm := `app="",llm="gpt",model="test-model",provider="openai"`
	for _, want := range []string{
		`hector_llm_requests_total{app="",llm="gpt",model="test-model",outcome="ok",provider="openai"} 2`,
		`hector_llm_tokens_total{` + llm + `,type="input"} 20`,
		`hector_llm_tokens_total{` + llm + `,type="output"} 10`,
		`hector_llm_request_duration_seconds_count{` + llm + `} 2`,
		`hector_agent_requests_total{agent="assistant",app="",status="completed"} 1`,
		`hector_agent_request_duration_seconds_count{agent="assistant",app=""} 1`,
		`hector_tool_calls_total{app="",outcome="ok",tool="echoer",type="command"} 1`,
		`hector_tool_call_duration_seconds_count{app="",tool="echoer"} 1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	// Nothing else: no series per session or user, no other outcome.
	if n := len(regexp.MustCompile(`(?m)^hector_(llm|agent|tool)_\w+(_total|_count)\{`).FindAllString(got, -1)); n != 8 {
		t.Errorf("%d counter series, want 8:\n%s", n, got)
	}
	// A streamed turn times its first token.
	fake.Push(llmtest.Reply{Text: "streamed"})
	req, _ := http.NewRequest("POST", h.base+"/v1/agents/assistant/messages", strings.NewReader(`{"message":"s"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "streamed") {
		t.Fatalf("the streamed turn: %s", b)
	}
	resp.Body.Close()
	eventually(t, "the stream's first token is timed", func() string {
		if l := strings.Join(h.metricLines("hector_llm_time_to_first_token_seconds_count"), ""); !strings.Contains(l, "} 1") {
			return l
		}
		return ""
	})
	fake.Push(llmtest.Reply{Status: 400})
	if r := h.send("assistant", "", "fail"); r.status == 200 {
		t.Fatalf("a failing model call answered 200")
	}
	got = strings.Join(h.metricLines(families...), "\n")
	for _, want := range []string{`hector_llm_requests_total{app="",llm="gpt",model="test-model",outcome="error",provider="openai"} 1`, `hector_agent_requests_total{agent="assistant",app="",status="error"} 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	// A tool the model invents is counted as _unknown; a method the server
	// does not know is _OTHER: neither makes a series of its own.
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c9", Name: "invented-by-the-model", Args: `{}`}}}, llmtest.Reply{Text: "ok"})
	if r := h.send("assistant", "", "invent"); r.status != 200 {
		t.Fatalf("turn: %d %s", r.status, r.raw)
	}
	h.call("FOOBAR", "/v1/agents", "", "")
	_, body := h.call("GET", "/metrics", h.key, "")
	if !strings.Contains(body, `tool="_unknown"`) || strings.Contains(body, "invented-by-the-model") ||
		!strings.Contains(body, `method="_OTHER"`) || strings.Contains(body, "FOOBAR") {
		t.Errorf("invented names became labels:\n%s", strings.Join(h.metricLines("hector_tool_calls_total", "hector_http_requests_total"), "\n"))
	}
	// A reload without them: their series go.
	h.write(fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {other: {llm: e}}\nserver: {port: 0, shutdown_timeout: 5s}\n"))
	h.next()
	var left []string
	for _, l := range h.metricLines(families...) {
		if !strings.Contains(l, `tool="_unknown"`) { // the one series of invented names stays
			left = append(left, l)
		}
	}
	if len(left) != 0 {
		t.Errorf("series left behind by the reload:\n%s", strings.Join(left, "\n"))
	}
}

// observability.metrics.enabled: false switches the endpoint and the
// recording off, live, and true back on.
func TestMetricsCanBeSwitchedOff(t *testing.T) {
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\nobservability: {metrics: {enabled: false}}\n")
	if resp, body := h.call("GET", "/metrics", "", ""); resp.StatusCode != 404 || !strings.Contains(body, "metrics_disabled") {
		t.Fatalf("/metrics switched off: %d %s", resp.StatusCode, body)
	}
	if r := h.send("a", "", "unseen"); r.status != 200 {
		t.Fatal(r.raw)
	}
	h.write("llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	h.next()
	if lines := h.metricLines("hector_agent_requests_total"); len(lines) != 0 {
		t.Errorf("a turn made while metrics were off was counted: %v", lines)
	}
	if r := h.send("a", "", "seen"); r.status != 200 {
		t.Fatal(r.raw)
	}
	if lines := h.metricLines("hector_agent_requests_total"); len(lines) != 1 || !strings.HasSuffix(lines[0], " 1") {
		t.Errorf("after switching metrics on: %v", lines)
	}
}
