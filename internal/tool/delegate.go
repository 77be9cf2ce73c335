package tool

import (
	"context"
	"fmt"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// Delegation: a tool of type agent sends a message to another agent and
// returns its reply. The tool does not know the agents; whoever runs a
// turn puts a Delegator for its configuration snapshot in the context
// (runtime.WithDelegation), so the delegate is the one of that snapshot.

// Delegator runs one turn of agent on message and returns the reply.
type Delegator func(ctx context.Context, agent, message string) (string, error)

type keyDelegator struct{}
type keyDepth struct{}

// MaxDelegationDepth bounds chains of delegation (a asks b asks c …),
// which allowed_delegates could otherwise make cyclic.
const MaxDelegationDepth = 4

// WithDelegator makes d the way agent tools reach agents under ctx.
func WithDelegator(ctx context.Context, d Delegator) context.Context {
	return context.WithValue(ctx, keyDelegator{}, d)
}

// DelegationDepth is how many delegations led to ctx's turn.
func DelegationDepth(ctx context.Context) int {
	n, _ := ctx.Value(keyDepth{}).(int)
	return n
}

type delegate struct {
	name, agent, description string
	timeout                  time.Duration
}

func newDelegate(name string, cfg config.Tool) *delegate {
	desc := cfg.Description
	if desc == "" {
		desc = fmt.Sprintf("Ask agent %s: sends it a message and returns its answer.", cfg.Agent)
	}
	return &delegate{name: name, agent: cfg.Agent, description: desc, timeout: cfg.Timeout.D()}
}

func (d *delegate) Spec() llm.ToolSpec {
	return llm.ToolSpec{Name: d.name, Description: d.description, Parameters: map[string]any{
		"type": "object",
		"properties": map[string]any{
			"message": map[string]any{"type": "string", "description": "What to ask agent " + d.agent + "."},
		},
		"required": []string{"message"},
	}}
}

func (d *delegate) Call(ctx context.Context, args map[string]any) (string, error) {
	msg, err := stringArg(args, "message")
	if err != nil {
		return "", err
	}
	run, _ := ctx.Value(keyDelegator{}).(Delegator)
	if run == nil {
		return "", fmt.Errorf("agent %s cannot be reached from here: no delegation in this context", d.agent)
	}
	depth := DelegationDepth(ctx)
	if depth >= MaxDelegationDepth {
		return "", fmt.Errorf("delegation to %s refused: chains of delegation stop at %d agents", d.agent, MaxDelegationDepth)
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	return run(context.WithValue(ctx, keyDepth{}, depth+1), d.agent, msg)
}
