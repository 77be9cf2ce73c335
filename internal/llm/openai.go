package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/hector-run/hector/internal/config"
)

// openAI speaks the Chat Completions API through the official SDK, so any
// OpenAI-compatible server (Ollama, vLLM, LM Studio) works via base_url.
type openAI struct {
	client openai.Client
	cfg    config.LLM
	tr     *http.Transport
}

func newOpenAI(cfg config.LLM) *openAI {
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
	return &openAI{client: openai.NewClient(opts...), cfg: cfg, tr: tr}
}

func (o *openAI) Close() error { o.tr.CloseIdleConnections(); return nil }

func (o *openAI) params(req Request) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: o.cfg.Model}
	if req.System != "" {
		p.Messages = append(p.Messages, openai.SystemMessage(req.System))
	}
	for _, m := range req.Messages {
		switch m.Role {
		case RoleUser:
			p.Messages = append(p.Messages, openai.UserMessage(m.Content))
		case RoleTool:
			p.Messages = append(p.Messages, openai.ToolMessage(m.Content, m.ToolCallID))
		case RoleAssistant:
			a := openai.ChatCompletionAssistantMessageParam{}
			if m.Content != "" {
				a.Content.OfString = openai.String(m.Content)
			}
			for _, tc := range m.ToolCalls {
				a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID:       tc.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: tc.Name, Arguments: string(tc.Arguments)},
					},
				})
			}
			p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		}
	}
	for _, t := range req.Tools {
		p.Tools = append(p.Tools, openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  openai.FunctionParameters(t.Parameters),
		}))
	}
	if o.cfg.Temperature != nil {
		p.Temperature = openai.Float(*o.cfg.Temperature)
	}
	if o.cfg.MaxTokens > 0 {
		p.MaxCompletionTokens = openai.Int(int64(o.cfg.MaxTokens))
	}
	return p
}

func (o *openAI) Generate(ctx context.Context, req Request, onText func(string)) (*Response, error) {
	params := o.params(req)
	var msg openai.ChatCompletionMessage
	var usage openai.CompletionUsage
	if onText == nil {
		c, err := o.client.Chat.Completions.New(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("openai: %w", err)
		}
		if len(c.Choices) == 0 {
			return nil, fmt.Errorf("openai: response has no choices")
		}
		msg, usage = c.Choices[0].Message, c.Usage
	} else {
		params.StreamOptions.IncludeUsage = openai.Bool(true)
		stream := o.client.Chat.Completions.NewStreaming(ctx, params)
		defer stream.Close()
		acc := openai.ChatCompletionAccumulator{}
		for stream.Next() {
			chunk := stream.Current()
			acc.AddChunk(chunk)
			if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
				onText(chunk.Choices[0].Delta.Content)
			}
		}
		if err := stream.Err(); err != nil {
			return nil, fmt.Errorf("openai: %w", err)
		}
		if len(acc.Choices) == 0 {
			return nil, fmt.Errorf("openai: stream ended without a choice")
		}
		msg, usage = acc.Choices[0].Message, acc.Usage
	}
	out := Message{Role: RoleAssistant, Content: msg.Content}
	for _, tc := range msg.ToolCalls {
		args := json.RawMessage(tc.Function.Arguments)
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args})
	}
	return &Response{Message: out, Usage: Usage{InputTokens: usage.PromptTokens, OutputTokens: usage.CompletionTokens}}, nil
}
