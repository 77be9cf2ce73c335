// Package agent runs an agent's turn: the model is called, the tools it asks
// for run, their results go back, until the model answers or the iteration
// limit is reached.
package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hector-run/hector/internal/config"
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
	// Sets are the agent's tool entries whose tools can change while it
	// runs (MCP servers), in the agent's order. A name a set offers that
	// an earlier tool already has is left out.
	Sets []tool.Set
	// Approvals names the tools whose calls a human approves first, with
	// the prompt shown to the approver. A set's tool that is tool.Gated
	// decides for itself.
	Approvals map[string]string
	// Observer, if set, sees each turn run by RunFrom and each tool call
	// (metrics, traces).
	Observer Observer
	specs    []llm.ToolSpec
}

// Observer sees turns and tool calls begin and end. Each Start returns
// the context the work runs under (a span's) and a function the agent
// calls once when it ends. Implementations must be safe for concurrent
// use and must not block.
type Observer interface {
	// StartTurn begins a turn of agent; end gets its TurnStatus.
	StartTurn(ctx context.Context, agent string) (context.Context, func(status string))
	// StartToolCall begins a tool call; end gets ok, error or rejected
	// (by a human reviewer), and the result the model will see.
	StartToolCall(ctx context.Context, call llm.ToolCall) (context.Context, func(outcome, result string))
}

// TurnStatus names how a turn ended, as Observer.Turn reports it:
// completed, max_iterations, input_required (waiting for an approval),
// canceled or error.
func TurnStatus(res *Result, err error) string {
	var wait *ApprovalRequired
	switch {
	case errors.As(err, &wait):
		return "input_required"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case err != nil:
		return "error"
	case res.StopReason == StopMaxIterations:
		return "max_iterations"
	}
	return "completed"
}

// Decision is a human's verdict on a tool call that needs approval.
type Decision struct {
	Decided  bool   `json:"-"`
	Approved bool   `json:"approved"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
}

// ApprovalRequired ends a turn that reached a tool call needing approval
// with no decision yet. The turn's messages up to the call have been
// saved (through save); the turn continues with RunFrom once decided.
type ApprovalRequired struct {
	Call   llm.ToolCall
	Prompt string
}

func (e *ApprovalRequired) Error() string {
	return fmt.Sprintf("tool call %s (%s) needs approval", e.Call.ID, e.Call.Name)
}

// New assembles an agent; tools are offered to the model in the order
// given, each found in byName or, for a tool entry with several tools, in
// sets.
func New(name, description, instruction string, maxIterations int, client llm.Client, tools []string, byName map[string]tool.Tool, sets map[string]tool.Set) *Agent {
	a := &Agent{Name: name, Description: description, Instruction: instruction, MaxIterations: maxIterations,
		LLM: client, Tools: map[string]tool.Tool{}}
	for _, t := range tools {
		if set, ok := sets[t]; ok {
			a.Sets = append(a.Sets, set)
			continue
		}
		a.Tools[t] = byName[t]
		a.specs = append(a.specs, byName[t].Spec())
	}
	return a
}

// toolSpecs are the tools offered to the model now: the fixed ones, then
// what each set offers at this moment.
func (a *Agent) toolSpecs() []llm.ToolSpec {
	if len(a.Sets) == 0 {
		return a.specs
	}
	specs := slices.Clip(a.specs)
	for _, set := range a.Sets {
		for _, t := range set.Tools() {
			spec := t.Spec()
			if _, dup := a.Tools[spec.Name]; !dup && !slices.ContainsFunc(specs, func(s llm.ToolSpec) bool { return s.Name == spec.Name }) {
				specs = append(specs, spec)
			}
		}
	}
	return specs
}

// lookup finds the tool the model called by name.
func (a *Agent) lookup(name string) (tool.Tool, bool) {
	if t, ok := a.Tools[name]; ok {
		return t, true
	}
	for _, set := range a.Sets {
		for _, t := range set.Tools() {
			if t.Spec().Name == name {
				return t, true
			}
		}
	}
	return nil, false
}

// approval says whether a call of the tool named name needs a human's
// approval first, and the prompt shown to the approver: when the agent's
// Approvals name it, or any of its sets' tools of that name (even one
// hidden by an earlier tool) is tool.Gated and needs it.
func (a *Agent) approval(name string) (string, bool) {
	if prompt, ok := a.Approvals[name]; ok {
		return prompt, true
	}
	for _, set := range a.Sets {
		for _, t := range set.Tools() {
			if g, ok := t.(tool.Gated); ok && t.Spec().Name == name {
				if prompt, needed := g.Approval(); needed {
					return prompt, true
				}
			}
		}
	}
	return "", false
}

// EventType names what an Event reports.
type EventType string

// Event types.
const (
	EventText       EventType = "text"        // a piece of the model's reply
	EventToolCall   EventType = "tool_call"   // the model called a tool
	EventToolResult EventType = "tool_result" // a tool call's result
)

// Event reports progress of a turn to a streaming caller.
type Event struct {
	Type     EventType     `json:"type"` // EventText, EventToolCall, EventToolResult
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
	return a.RunFrom(ctx, history, []llm.Message{{Role: llm.RoleUser, Content: input}}, Hooks{Emit: emit})
}

// Hooks are RunFrom's optional callbacks.
type Hooks struct {
	// Emit streams the model's text and reports tool activity.
	Emit func(Event)
	// Save is called with every new message (the model's reply, each tool
	// result) before the turn goes on; its error ends the turn.
	Save func(llm.Message) error
	// Decide returns the decision on a call that needs approval; without
	// a decision the turn ends with *ApprovalRequired.
	Decide func(llm.ToolCall) Decision
}

// RunFrom continues a turn from its checkpoints: turn holds the turn's
// messages so far, starting with the user message. Tool calls of the last
// assistant message that have no saved result run first; a call whose
// result was saved never runs again. Iterations already in turn count
// toward the limit. A call to a tool in Approvals runs only once approved;
// a rejected one gives the model an error result naming the reason.
func (a *Agent) RunFrom(ctx context.Context, history, turn []llm.Message, h Hooks) (*Result, error) {
	if a.Observer == nil {
		return a.run(ctx, history, turn, h, -1)
	}
	ctx, end := a.Observer.StartTurn(ctx, a.Name)
	res, err := a.run(ctx, history, turn, h, -1)
	end(TurnStatus(res, err))
	return res, err
}

// Step is RunFrom limited to one model call (and the tool calls it asks
// for), so a caller can take the configuration afresh between steps. The
// result's StopReason is empty when the turn needs more steps; Usage
// counts this step only.
func (a *Agent) Step(ctx context.Context, history, turn []llm.Message, h Hooks) (*Result, error) {
	return a.run(ctx, history, turn, h, 1)
}

// run continues a turn with at most calls model calls (-1: no limit but
// MaxIterations).
func (a *Agent) run(ctx context.Context, history, turn []llm.Message, h Hooks, calls int) (*Result, error) {
	emit, save := h.Emit, h.Save
	if len(turn) == 0 || turn[0].Role != llm.RoleUser {
		return nil, fmt.Errorf("a turn starts with the user message")
	}
	res := &Result{Messages: append([]llm.Message(nil), turn...)}
	convo := append(append([]llm.Message(nil), history...), turn...)
	keep := func(m llm.Message) error {
		if save != nil {
			if err := save(m); err != nil {
				return err
			}
		}
		convo = append(convo, m)
		res.Messages = append(res.Messages, m)
		return nil
	}
	var onText func(string)
	if emit != nil {
		onText = func(s string) { emit(Event{Type: EventText, Text: s}) }
	}
	// Resume: the last model message and the results already saved for it.
	var pending []llm.ToolCall
	for i := len(turn) - 1; i > 0; i-- {
		if turn[i].Role == llm.RoleAssistant {
			res.Reply = turn[i].Content
			done := map[string]bool{}
			for _, m := range turn[i+1:] {
				done[m.ToolCallID] = true
			}
			for _, c := range turn[i].ToolCalls {
				if !done[c.ID] {
					pending = append(pending, c)
				}
			}
			if len(turn[i].ToolCalls) == 0 {
				res.StopReason = StopAnswer
				return res, nil // the turn had finished
			}
			break
		}
	}
	for _, m := range turn {
		if m.Role == llm.RoleAssistant {
			res.Iterations++
		}
	}
	if err := a.runTools(ctx, pending, h, keep); err != nil {
		return nil, err
	}
	for res.Iterations < a.MaxIterations {
		if calls == 0 {
			return res, nil // more steps to go
		}
		calls--
		res.Iterations++
		resp, err := a.LLM.Generate(ctx, llm.Request{System: a.Instruction, Messages: convo, Tools: a.toolSpecs()}, onText)
		if err != nil {
			return nil, err
		}
		res.Usage.InputTokens += resp.Usage.InputTokens
		res.Usage.OutputTokens += resp.Usage.OutputTokens
		msg := resp.Message
		if err := keep(msg); err != nil {
			return nil, err
		}
		res.Reply = msg.Content
		if len(msg.ToolCalls) == 0 {
			res.StopReason = StopAnswer
			return res, nil
		}
		if err := a.runTools(ctx, msg.ToolCalls, h, keep); err != nil {
			return nil, err
		}
	}
	res.StopReason = StopMaxIterations
	return res, nil
}

// runTools runs calls in order, keeping each result.
func (a *Agent) runTools(ctx context.Context, calls []llm.ToolCall, h Hooks, keep func(llm.Message) error) error {
	emit := h.Emit
	for _, call := range calls {
		// The tool is found once, so the call goes to the tool looked up
		// here; approval is by name and needed when any tool of that name
		// needs it, so a set's list changing in between cannot move a call
		// from a gated tool to an ungated one.
		t, found := a.lookup(call.Name)
		var d Decision
		prompt, needs := a.approval(call.Name)
		if needs {
			if h.Decide != nil {
				d = h.Decide(call)
			}
			if !d.Decided {
				return &ApprovalRequired{Call: call, Prompt: prompt}
			}
		}
		if emit != nil {
			c := call
			emit(Event{Type: EventToolCall, ToolCall: &c})
		}
		var out string
		var callErr error
		callCtx, end := ctx, func(string, string) {}
		if a.Observer != nil {
			callCtx, end = a.Observer.StartToolCall(ctx, call)
		}
		outcome := "ok"
		if needs && !d.Approved {
			callErr = fmt.Errorf("a human reviewer rejected this call: %s", orDefault(d.Reason, "no reason given"))
			outcome = "rejected"
		} else if !found {
			callErr, outcome = fmt.Errorf("unknown tool %q", call.Name), "error"
		} else if out, callErr = a.call(callCtx, t, call); callErr != nil {
			outcome = "error"
		}
		if ctx.Err() != nil {
			end("canceled", "")
			return ctx.Err()
		}
		tm := llm.Message{Role: llm.RoleTool, ToolCallID: call.ID, Name: call.Name, Content: out}
		if callErr != nil {
			// The model, the session and every client see this text: URLs
			// in it (an HTTP client's error names the URL) lose their
			// credentials.
			tm.Content, tm.IsError = "error: "+config.RedactText(callErr.Error()), true
		}
		end(outcome, tm.Content)
		if emit != nil {
			emit(Event{Type: EventToolResult, ToolID: call.ID, Result: tm.Content, IsError: tm.IsError})
		}
		if err := keep(tm); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) call(ctx context.Context, t tool.Tool, call llm.ToolCall) (out string, err error) {
	args, err := call.Args()
	if err != nil {
		return "", err
	}
	defer func() { // a tool bug must not take the server down
		if r := recover(); r != nil {
			err = fmt.Errorf("tool %s panicked: %v", call.Name, r)
		}
	}()
	return t.Call(tool.WithCallID(ctx, call.ID), args)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
