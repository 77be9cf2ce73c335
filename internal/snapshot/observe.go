package snapshot

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/tool"
)

// observer counts and traces what the snapshot's agents do, as its app's:
// a turn is an invoke_agent span, a tool call an execute_tool span, after
// the OpenTelemetry GenAI semantic conventions. It implements
// agent.Observer. Either m or t may be nil.
type observer struct {
	m   *observe.Metrics
	t   *observe.Tracing
	app string
	cfg *config.Config // for the tools' types
	// tools are the agent's tool entries and mcp the snapshot's MCP
	// servers: a call of an MCP server's tool counts as its entry's.
	tools []string
	mcp   map[string]*tool.MCPServer
}

// entry is the configuration entry of the tool the model called: the
// tool itself, or the agent's MCP entry offering it; "" when neither.
func (o *observer) entry(name string) string {
	if _, ok := o.cfg.Tools[name]; ok {
		return name
	}
	for _, e := range o.tools {
		if srv := o.mcp[e]; srv != nil {
			for _, t := range srv.Tools() {
				if t.Spec().Name == name {
					return e
				}
			}
		}
	}
	return ""
}

func (o *observer) StartTurn(ctx context.Context, agent string) (context.Context, func(string)) {
	start := time.Now()
	attrs := []attribute.KeyValue{attribute.String("gen_ai.operation.name", "invoke_agent"), attribute.String("gen_ai.agent.name", agent)}
	if c := llm.Conversation(ctx); c != "" {
		attrs = append(attrs, attribute.String("gen_ai.conversation.id", c))
	}
	if o.app != "" {
		attrs = append(attrs, attribute.String("hector.app", o.app))
	}
	ctx, span := o.t.Tracer().Start(ctx, "invoke_agent "+agent, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, func(status string) {
		span.SetAttributes(attribute.String("hector.turn.status", status))
		if status == "error" {
			span.SetStatus(codes.Error, "the turn failed")
		}
		span.End()
		if o.m != nil {
			o.m.AgentTurn(o.app, agent, status, time.Since(start))
		}
	}
}

func (o *observer) StartToolCall(ctx context.Context, call llm.ToolCall) (context.Context, func(string, string)) {
	start := time.Now()
	// The model names the tool: a name neither the configuration nor an
	// MCP server of the agent offers is counted as _unknown, so model
	// output never becomes a label. An MCP server's tool is counted as
	// its entry (the label set stays the configuration's) and traced
	// under its own name.
	entry, name := o.entry(call.Name), call.Name
	if entry == "" {
		entry, name = "_unknown", "_unknown"
	}
	typ := o.cfg.Tools[entry].Type
	ctx, span := o.t.Tracer().Start(ctx, "execute_tool "+name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", name),
		attribute.String("gen_ai.tool.call.id", bounded(call.ID)), attribute.String("gen_ai.tool.type", typ)))
	if o.t.CaptureContent() {
		span.SetAttributes(attribute.String("gen_ai.tool.call.arguments", bounded(string(call.Arguments))))
	}
	return ctx, func(outcome, result string) {
		if outcome != "ok" {
			span.SetStatus(codes.Error, outcome)
		}
		if o.t.CaptureContent() {
			span.SetAttributes(attribute.String("gen_ai.tool.call.result", bounded(result)))
		}
		span.End()
		if o.m != nil {
			o.m.ToolCall(o.app, entry, typ, outcome, time.Since(start))
		}
	}
}

// observed is c counted and traced, when the snapshot does either.
func observed(c llm.Client, s *Snapshot, name string, lc config.LLM) llm.Client {
	if s.metrics == nil && s.tracing == nil {
		return c
	}
	return &observedLLM{Client: c, m: s.metrics, t: s.tracing, labels: observe.LLMCall{App: s.App, LLM: name, Provider: lc.Provider, Model: lc.Model}}
}

// observedLLM counts and traces each model call: a chat span with the
// GenAI attributes; outcome, duration, time to the first text of a
// stream, tokens.
type observedLLM struct {
	llm.Client
	m      *observe.Metrics
	t      *observe.Tracing
	labels observe.LLMCall
}

func (o *observedLLM) Generate(ctx context.Context, req llm.Request, onText func(string)) (*llm.Response, error) {
	call := o.labels
	ctx, span := o.t.Tracer().Start(ctx, "chat "+call.Model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", call.Provider),
		attribute.String("gen_ai.request.model", call.Model), attribute.String("hector.llm", call.LLM)))
	if c := llm.Conversation(ctx); c != "" {
		span.SetAttributes(attribute.String("gen_ai.conversation.id", c))
	}
	capture := o.t.CaptureContent()
	if capture {
		span.SetAttributes(attribute.String("gen_ai.system_instructions", bounded(req.System)), attribute.String("gen_ai.input.messages", jsonBounded(req.Messages)))
	}
	start := time.Now()
	if onText != nil {
		inner := onText
		onText = func(t string) {
			if call.FirstText == 0 {
				call.FirstText = time.Since(start)
			}
			inner(t)
		}
	}
	resp, err := o.Client.Generate(ctx, req, onText)
	call.Elapsed, call.Outcome = time.Since(start), "ok"
	switch {
	case err != nil && ctx.Err() != nil:
		call.Outcome = "canceled"
		span.SetStatus(codes.Error, "canceled")
	case err != nil:
		call.Outcome = "error"
		// A provider's error text can quote the request: shown only where
		// content is.
		msg := "the model call failed"
		if capture {
			msg = bounded(config.RedactText(err.Error()))
		}
		span.SetStatus(codes.Error, msg)
	default:
		call.InputTokens, call.OutputTokens = resp.Usage.InputTokens, resp.Usage.OutputTokens
		finish := "stop"
		if len(resp.Message.ToolCalls) > 0 {
			finish = "tool_calls"
		}
		span.SetAttributes(attribute.Int64("gen_ai.usage.input_tokens", call.InputTokens), attribute.Int64("gen_ai.usage.output_tokens", call.OutputTokens),
			attribute.StringSlice("gen_ai.response.finish_reasons", []string{finish}))
		if capture {
			span.SetAttributes(attribute.String("gen_ai.output.messages", jsonBounded([]llm.Message{resp.Message})))
		}
	}
	span.End()
	if o.m != nil {
		o.m.LLMCall(call)
	}
	return resp, err
}

// contentLimit bounds each piece of content a span carries.
const contentLimit = 8 << 10

func bounded(s string) string {
	if len(s) <= contentLimit {
		return s
	}
	cut := contentLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func jsonBounded(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return bounded(string(b))
}

// MCPStatus reports the snapshot's MCP servers for the metrics, by name.
func (s *Snapshot) MCPStatus() []observe.MCPStatus {
	out := make([]observe.MCPStatus, 0, len(s.MCP))
	for _, name := range slices.Sorted(maps.Keys(s.MCP)) {
		srv := s.MCP[name]
		out = append(out, observe.MCPStatus{App: s.App, Tool: name, Up: srv.Up(), Restarts: srv.Starts() - 1})
	}
	return out
}
