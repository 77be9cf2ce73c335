// Package tool implements the tool kinds agents can call: command and http.
package tool

import (
	"context"
	"fmt"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// Tool is one callable tool. Call returns the text given back to the model;
// an error is also given back to the model (as an error result) and never
// ends the agent's turn. Implementations are safe for concurrent use.
type Tool interface {
	Spec() llm.ToolSpec
	Call(ctx context.Context, args map[string]any) (string, error)
}

type keyScope struct{}

// WithIdempotencyScope marks ctx as belonging to a durable unit of work
// (a task): tool calls made under it carry an idempotency key, the scope
// plus the model's tool call ID. A call repeated after a crash (it ran,
// but its result was not saved) carries the same key, so a receiver that
// honours the key applies the effect once.
func WithIdempotencyScope(ctx context.Context, scope string) context.Context {
	return context.WithValue(ctx, keyScope{}, scope)
}

type keyCall struct{}

// WithCallID records the model's tool call ID for IdempotencyKey.
func WithCallID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyCall{}, id)
}

// IdempotencyKey is the key of the call made under ctx, "" outside a
// durable scope. The http tool sends it as the Idempotency-Key header; the
// command tool sets HECTOR_IDEMPOTENCY_KEY.
func IdempotencyKey(ctx context.Context) string {
	scope, _ := ctx.Value(keyScope{}).(string)
	id, _ := ctx.Value(keyCall{}).(string)
	if scope == "" || id == "" {
		return ""
	}
	return scope + "/" + id
}

// New builds the tool named name from its validated, defaulted config.
func New(name string, cfg config.Tool) (Tool, error) {
	switch cfg.Type {
	case "command":
		return newCommand(name, cfg), nil
	case "http":
		return newHTTP(name, cfg), nil
	case "agent":
		return newDelegate(name, cfg), nil
	}
	return nil, fmt.Errorf("tool %s: unknown type %q", name, cfg.Type)
}

// capped is an io.Writer that keeps the first max bytes and counts the rest.
type capped struct {
	buf     []byte
	max     int
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - len(c.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		c.buf = append(c.buf, p[:room]...)
	}
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (c *capped) String() string {
	if c.dropped > 0 {
		return fmt.Sprintf("%s\n[output truncated: %d more bytes]", c.buf, c.dropped)
	}
	return string(c.buf)
}

func stringArg(args map[string]any, name string) (string, error) {
	v, ok := args[name]
	if !ok {
		return "", fmt.Errorf("missing argument %q", name)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("argument %q must be a string", name)
	}
	return s, nil
}
