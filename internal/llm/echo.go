package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
)

// Echo is the offline provider, for trying Hector out and for tests. It
// answers "[INSTRUCTION] MESSAGE" (or just MESSAGE without an instruction).
// A user message "/tool NAME {json}" makes it call tool NAME with those
// arguments; after a tool result it answers "NAME: RESULT".
type Echo struct{}

var echoCalls atomic.Int64

// Generate implements Client.
func (Echo) Generate(ctx context.Context, req Request, onText func(string)) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var last Message
	if n := len(req.Messages); n > 0 {
		last = req.Messages[n-1]
	}
	var text string
	switch {
	case last.Role == RoleTool:
		text = fmt.Sprintf("%s: %s", last.Name, last.Content)
	case strings.HasPrefix(last.Content, "/tool "):
		name, args, _ := strings.Cut(strings.TrimPrefix(last.Content, "/tool "), " ")
		if strings.TrimSpace(args) == "" {
			args = "{}"
		}
		if !json.Valid([]byte(args)) {
			text = fmt.Sprintf("echo: tool arguments are not JSON: %s", args)
			break
		}
		id := fmt.Sprintf("echo_%d", echoCalls.Add(1))
		return &Response{Message: Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: id, Name: name, Arguments: json.RawMessage(args)}}}}, nil
	case req.System != "":
		text = "[" + req.System + "] " + last.Content
	default:
		text = last.Content
	}
	if onText != nil {
		for i, word := range strings.SplitAfter(text, " ") {
			if i > 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			onText(word)
		}
	}
	return &Response{Message: Message{Role: RoleAssistant, Content: text}}, nil
}

// Close implements Client; Echo holds nothing.
func (Echo) Close() error { return nil }
