// Package llm holds the provider-neutral conversation types and the model
// clients that speak them: openai (Chat Completions), anthropic (Messages)
// and echo (offline).
package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hector-run/hector/internal/config"
)

// Role is who wrote a message.
type Role string

// Message roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Message is one entry of a conversation. Assistant messages may carry tool
// calls; tool messages answer one call by ToolCallID.
type Message struct {
	Role       Role       `json:"role"`
	Content    string     `json:"content,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
	IsError    bool       `json:"is_error,omitempty"`
}

// ToolSpec describes a tool to the model. Parameters is a JSON Schema object.
type ToolSpec struct {
	Name        string
	Description string
	Parameters  map[string]any
}

// Request is one completion request.
type Request struct {
	System   string
	Messages []Message
	Tools    []ToolSpec
}

// Usage counts tokens of one completion.
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// Response is one completion: an assistant message, possibly with tool calls.
type Response struct {
	Message Message
	Usage   Usage
}

// Client is a model client. Implementations are safe for concurrent use.
type Client interface {
	// Generate runs one completion. With onText non-nil the completion is
	// streamed and onText receives each text fragment as it arrives; the
	// returned Response is complete either way. Transient provider errors
	// (429, 5xx, connection resets) are retried inside Generate.
	Generate(ctx context.Context, req Request, onText func(string)) (*Response, error)
	// Close releases the client's idle connections. In-flight calls finish.
	Close() error
}

type conversationKey struct{}

// WithConversation names the conversation (the Hector session) a model
// call belongs to, for clients that keep state on the other side: a
// remote A2A agent continues one context per conversation.
func WithConversation(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, conversationKey{}, id)
}

// Conversation is the conversation ctx belongs to, or "".
func Conversation(ctx context.Context) string {
	id, _ := ctx.Value(conversationKey{}).(string)
	return id
}

// New builds the client for one configured LLM. cfg must be validated and
// defaulted. Each client owns its HTTP transport, so closing one client never
// disturbs another.
func New(cfg config.LLM) (Client, error) {
	switch cfg.Provider {
	case "echo":
		return Echo{}, nil
	case "openai":
		return newOpenAI(cfg), nil
	case "anthropic":
		return newAnthropic(cfg), nil
	}
	return nil, fmt.Errorf("unknown provider %q", cfg.Provider)
}

// transport returns a fresh transport and the client around it.
func httpClient() (*http.Client, *http.Transport) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: tr}, tr
}

// Arguments parses tool call arguments, treating empty input as {}.
func (c ToolCall) Args() (map[string]any, error) {
	args := map[string]any{}
	if len(c.Arguments) == 0 {
		return args, nil
	}
	if err := json.Unmarshal(c.Arguments, &args); err != nil {
		return nil, fmt.Errorf("tool %s: arguments are not a JSON object: %w", c.Name, err)
	}
	return args, nil
}
