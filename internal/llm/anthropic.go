package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/hector-run/hector/internal/config"
)

// anthropicClient speaks the Messages API through the official SDK.
type anthropicClient struct {
	client anthropic.Client
	cfg    config.LLM
	tr     *http.Transport
}

func newAnthropic(cfg config.LLM) *anthropicClient {
	hc, tr := httpClient()
	opts := []option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(*cfg.MaxRetries),
		option.WithRequestTimeout(cfg.Timeout.D()),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	return &anthropicClient{client: anthropic.NewClient(opts...), cfg: cfg, tr: tr}
}

func (a *anthropicClient) Close() error { a.tr.CloseIdleConnections(); return nil }

func (a *anthropicClient) params(req Request) anthropic.MessageNewParams {
	p := anthropic.MessageNewParams{Model: anthropic.Model(a.cfg.Model), MaxTokens: int64(a.cfg.MaxTokens)}
	if req.System != "" {
		p.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	// Anthropic wants tool results as user turns; consecutive results of one
	// assistant turn share a single user message.
	for _, m := range req.Messages {
		switch m.Role {
		case RoleUser:
			p.Messages = append(p.Messages, anthropic.NewUserMessage(anthropic.NewTextBlock(m.Content)))
		case RoleAssistant:
			var blocks []anthropic.ContentBlockParamUnion
			if m.Content != "" {
				blocks = append(blocks, anthropic.NewTextBlock(m.Content))
			}
			for _, tc := range m.ToolCalls {
				blocks = append(blocks, anthropic.NewToolUseBlock(tc.ID, tc.Arguments, tc.Name))
			}
			p.Messages = append(p.Messages, anthropic.NewAssistantMessage(blocks...))
		case RoleTool:
			block := anthropic.NewToolResultBlock(m.ToolCallID, m.Content, m.IsError)
			if n := len(p.Messages); n > 0 && p.Messages[n-1].Role == anthropic.MessageParamRoleUser && isToolResults(p.Messages[n-1]) {
				p.Messages[n-1].Content = append(p.Messages[n-1].Content, block)
			} else {
				p.Messages = append(p.Messages, anthropic.NewUserMessage(block))
			}
		}
	}
	for _, t := range req.Tools {
		schema := anthropic.ToolInputSchemaParam{Properties: t.Parameters["properties"]}
		if req, ok := t.Parameters["required"].([]string); ok {
			schema.Required = req
		}
		p.Tools = append(p.Tools, anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
			Name: t.Name, Description: anthropic.String(t.Description), InputSchema: schema,
		}})
	}
	if a.cfg.Temperature != nil {
		p.Temperature = anthropic.Float(*a.cfg.Temperature)
	}
	return p
}

func isToolResults(m anthropic.MessageParam) bool {
	for _, b := range m.Content {
		if b.OfToolResult == nil {
			return false
		}
	}
	return len(m.Content) > 0
}

func (a *anthropicClient) Generate(ctx context.Context, req Request, onText func(string)) (*Response, error) {
	params := a.params(req)
	var msg anthropic.Message
	if onText == nil {
		m, err := a.client.Messages.New(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("anthropic: %w", err)
		}
		msg = *m
	} else {
		stream := a.client.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		for stream.Next() {
			ev := stream.Current()
			if err := msg.Accumulate(ev); err != nil {
				return nil, fmt.Errorf("anthropic: %w", err)
			}
			if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				if t, ok := d.Delta.AsAny().(anthropic.TextDelta); ok && t.Text != "" {
					onText(t.Text)
				}
			}
		}
		if err := stream.Err(); err != nil {
			return nil, fmt.Errorf("anthropic: %w", err)
		}
	}
	out := Message{Role: RoleAssistant}
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			out.Content += b.Text
		case "tool_use":
			args := json.RawMessage(b.Input)
			if len(args) == 0 {
				args = json.RawMessage("{}")
			}
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	return &Response{Message: out, Usage: Usage{InputTokens: msg.Usage.InputTokens, OutputTokens: msg.Usage.OutputTokens}}, nil
}
