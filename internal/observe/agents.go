package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// agentMetrics are what agents do: model calls and their tokens, turns and
// tool calls. Every series carries the app ("" for the main configuration)
// and the configured name (llm, agent, tool), never a session or user.
type agentMetrics struct {
	llmRequests *prometheus.CounterVec
	llmSeconds  *prometheus.HistogramVec
	llmFirst    *prometheus.HistogramVec
	llmTokens   *prometheus.CounterVec
	turns       *prometheus.CounterVec
	turnSeconds *prometheus.HistogramVec
	toolCalls   *prometheus.CounterVec
	toolSeconds *prometheus.HistogramVec
}

// modelBuckets span a cached answer (10 ms) to a long generation (2 min).
var modelBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newAgentMetrics() agentMetrics {
	llm := []string{"app", "llm", "provider", "model"}
	return agentMetrics{
		llmRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_llm_requests_total",
			Help: "Model calls by app, llm, provider, model and outcome (ok, error, canceled)."}, append(llm, "outcome")),
		llmSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hector_llm_request_duration_seconds",
			Help: "Model call duration, retries inside the client included.", Buckets: modelBuckets}, llm),
		llmFirst: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hector_llm_time_to_first_token_seconds",
			Help: "Time from a streamed model call's start to its first text.", Buckets: modelBuckets}, llm),
		llmTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_llm_tokens_total",
			Help: "Tokens the models reported, by type (input, output)."}, append(llm, "type")),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_agent_requests_total",
			Help: "Agent turns by app, agent and status (completed, max_iterations, input_required, error, canceled)."},
			[]string{"app", "agent", "status"}),
		turnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hector_agent_request_duration_seconds",
			Help: "Agent turn duration, every model and tool call of the turn included.", Buckets: modelBuckets}, []string{"app", "agent"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_tool_calls_total",
			Help: "Tool calls by app, tool (the configured entry; an MCP server's tools count as theirs), type (command, http, agent, mcp) and outcome (ok, error, rejected)."},
			[]string{"app", "tool", "type", "outcome"}),
		toolSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hector_tool_call_duration_seconds",
			Help: "Tool call duration.", Buckets: prometheus.DefBuckets}, []string{"app", "tool"}),
	}
}

func (a agentMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.llmRequests, a.llmSeconds, a.llmFirst, a.llmTokens, a.turns, a.turnSeconds, a.toolCalls, a.toolSeconds}
}

// LLMCall is one model call as the metrics count it.
type LLMCall struct {
	App, LLM, Provider, Model string
	Outcome                   string        // ok, error or canceled
	Elapsed                   time.Duration // the whole call
	FirstText                 time.Duration // a streamed call's time to its first text; 0 when none
	InputTokens, OutputTokens int64
}

// LLMCall counts one model call, its duration and its tokens.
//
// With OTLP export on (PrepareOTLP), it is also recorded in the GenAI
// client metrics.
func (m *Metrics) LLMCall(c LLMCall) {
	if m.off.Load() {
		return
	}
	if g := m.otlp.Load(); g != nil {
		g.record(c)
	}
	a := m.agents
	a.llmRequests.WithLabelValues(c.App, c.LLM, c.Provider, c.Model, c.Outcome).Inc()
	a.llmSeconds.WithLabelValues(c.App, c.LLM, c.Provider, c.Model).Observe(c.Elapsed.Seconds())
	if c.FirstText > 0 {
		a.llmFirst.WithLabelValues(c.App, c.LLM, c.Provider, c.Model).Observe(c.FirstText.Seconds())
	}
	if c.InputTokens > 0 || c.OutputTokens > 0 {
		a.llmTokens.WithLabelValues(c.App, c.LLM, c.Provider, c.Model, "input").Add(float64(c.InputTokens))
		a.llmTokens.WithLabelValues(c.App, c.LLM, c.Provider, c.Model, "output").Add(float64(c.OutputTokens))
	}
}

// AgentTurn counts one finished turn of agent in app, by status, and its
// duration.
func (m *Metrics) AgentTurn(app, agent, status string, elapsed time.Duration) {
	if m.off.Load() {
		return
	}
	m.agents.turns.WithLabelValues(app, agent, status).Inc()
	m.agents.turnSeconds.WithLabelValues(app, agent).Observe(elapsed.Seconds())
}

// ToolCall counts one tool call of tool (of kind typ) in app, by outcome,
// and its duration.
func (m *Metrics) ToolCall(app, tool, typ, outcome string, elapsed time.Duration) {
	if m.off.Load() {
		return
	}
	m.agents.toolCalls.WithLabelValues(app, tool, typ, outcome).Inc()
	m.agents.toolSeconds.WithLabelValues(app, tool).Observe(elapsed.Seconds())
}

// Forget deletes the series of the llms, agents or tools (kind, as the
// configuration names its sections) of app named in names, so that an
// entity removed or changed by a reload stops being exported; a changed
// one starts new series when next used.
func (m *Metrics) Forget(app, kind string, names []string) {
	var vecs []*prometheus.MetricVec
	label := ""
	switch kind {
	case "llms":
		label = "llm"
		a := m.agents
		vecs = []*prometheus.MetricVec{a.llmRequests.MetricVec, a.llmSeconds.MetricVec, a.llmFirst.MetricVec, a.llmTokens.MetricVec}
	case "agents":
		label = "agent"
		vecs = []*prometheus.MetricVec{m.agents.turns.MetricVec, m.agents.turnSeconds.MetricVec}
	case "tools":
		label = "tool"
		vecs = []*prometheus.MetricVec{m.agents.toolCalls.MetricVec, m.agents.toolSeconds.MetricVec}
	}
	for _, name := range names {
		for _, v := range vecs {
			v.DeletePartialMatch(prometheus.Labels{"app": app, label: name})
		}
	}
}

// ForgetApp deletes every series of app (a deleted app).
func (m *Metrics) ForgetApp(app string) {
	a := m.agents
	for _, v := range []*prometheus.MetricVec{a.llmRequests.MetricVec, a.llmSeconds.MetricVec, a.llmFirst.MetricVec, a.llmTokens.MetricVec,
		a.turns.MetricVec, a.turnSeconds.MetricVec, a.toolCalls.MetricVec, a.toolSeconds.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"app": app})
	}
}
