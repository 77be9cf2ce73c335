// Package agent runs an agent's turn: the model is called, the tools it asks
// for run, their results go back, until the model answers or the iteration
// limit is reached.
package agent

import (
	"context"
	"fmt"

	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/tool"
)

// Agent is a built agent. It is immutable and safe for concurrent turns.
type Agent struct {
	Name          string
	Description   string
	Instruction   string
	MaxIterations int
	LLM           llm.Client
	Tools         map[string]tool.Tool
	specs         []llm.ToolSpec
}

// New assembles an agent; tools are offered to the model in the order given.
func New(name, description, instruction string, maxIterations int, client llm.Client, tools []string, byName map[string]tool.Tool) *Agent {
	a := &Agent{Name: name, Description: description, Instruction: instruction, MaxIterations: maxIterations,
		LLM: client, Tools: map[string]tool.Tool{}}
	for _, t := range tools {
		a.Tools[t] = byName[t]
		a.specs = append(a.specs, byName[t].Spec())
	}
	return a
}

// Event reports progress of a turn to a streaming caller.
type Event struct {
	Type     string        `json:"type"` // "text", "tool_call", "tool_result"
	Text     string        `json:"text,omitempty"`
	ToolCall *llm.ToolCall `json:"tool_call,omitempty"`
	ToolID   string        `json:"tool_call_id,omitempty"`
	Result   string        `json:"result,omitempty"`
	IsError  bool          `json:"is_error,omitempty"`
}

// Stop reasons of a turn.
const (
	StopAnswer        = "answer"
	StopMaxIterations = "max_iterations"
)

// Result is a finished turn.
type Result struct {
	Reply      string        // the final assistant text
	Messages   []llm.Message // what the turn adds to the conversation, starting with the user message
	Usage      llm.Usage
	Iterations int
	StopReason string
}

// Run executes one turn on top of history. With emit non-nil the model's text
// is streamed and tool activity reported through it. A tool failure becomes
// an error result for the model; only a model error (or ctx) ends the turn
// with an error, and then nothing of the turn should be stored.
func (a *Agent) Run(ctx context.Context, history []llm.Message, input string, emit func(Event)) (*Result, error) {
	res := &Result{Messages: []llm.Message{{Role: llm.RoleUser, Content: input}}}
	convo := append(append([]llm.Message(nil), history...), res.Messages[0])
	var onText func(string)
	if emit != nil {
		onText = func(s string) { emit(Event{Type: "text", Text: s}) }
	}
	for res.Iterations < a.MaxIterations {
		res.Iterations++
		resp, err := a.LLM.Generate(ctx, llm.Request{System: a.Instruction, Messages: convo, Tools: a.specs}, onText)
		if err != nil {
			return nil, err
		}
		res.Usage.InputTokens += resp.Usage.InputTokens
		res.Usage.OutputTokens += resp.Usage.OutputTokens
		msg := resp.Message
		convo = append(convo, msg)
		res.Messages = append(res.Messages, msg)
		res.Reply = msg.Content
		if len(msg.ToolCalls) == 0 {
			res.StopReason = StopAnswer
			return res, nil
		}
		for _, call := range msg.ToolCalls {
			if emit != nil {
				c := call
				emit(Event{Type: "tool_call", ToolCall: &c})
			}
			out, callErr := a.call(ctx, call)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			tm := llm.Message{Role: llm.RoleTool, ToolCallID: call.ID, Name: call.Name, Content: out}
			if callErr != nil {
				tm.Content, tm.IsError = "error: "+callErr.Error(), true
			}
			if emit != nil {
				emit(Event{Type: "tool_result", ToolID: call.ID, Result: tm.Content, IsError: tm.IsError})
			}
			convo = append(convo, tm)
			res.Messages = append(res.Messages, tm)
		}
	}
	res.StopReason = StopMaxIterations
	return res, nil
}

func (a *Agent) call(ctx context.Context, call llm.ToolCall) (out string, err error) {
	t, ok := a.Tools[call.Name]
	if !ok {
		return "", fmt.Errorf("unknown tool %q", call.Name)
	}
	args, err := call.Args()
	if err != nil {
		return "", err
	}
	defer func() { // a tool bug must not take the server down
		if r := recover(); r != nil {
			err = fmt.Errorf("tool %s panicked: %v", call.Name, r)
		}
	}()
	return t.Call(ctx, args)
}
