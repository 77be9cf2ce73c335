package a2ahttp

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/store"
)

// An A2A task is a Hector task seen through the protocol: the task ID,
// the session as the context, the state mapped one to one, the input and
// the model's messages as history, and the reply as the artifact
// "response". Nothing A2A-specific is stored beyond the starting
// message's ID, so a task is the same whichever door it came in by.

// ResponseArtifact is the ID of the artifact holding a task's reply.
const ResponseArtifact a2a.ArtifactID = "response"

// state maps a task's state onto A2A's. A pending task that has run
// before is waiting for a retry: to the client it is still working.
func state(t *store.Task) a2a.TaskState {
	switch t.State {
	case store.TaskPending:
		if t.Attempts > 0 {
			return a2a.TaskStateWorking
		}
		return a2a.TaskStateSubmitted
	case store.TaskRunning:
		return a2a.TaskStateWorking
	case store.TaskInputRequired:
		return a2a.TaskStateInputRequired
	case store.TaskCompleted:
		return a2a.TaskStateCompleted
	case store.TaskFailed:
		return a2a.TaskStateFailed
	case store.TaskCanceled:
		return a2a.TaskStateCanceled
	}
	return a2a.TaskStateUnspecified
}

// storeState is the inverse of state, for filters.
func storeState(s a2a.TaskState) (store.TaskState, bool) {
	switch s {
	case a2a.TaskStateSubmitted:
		return store.TaskPending, true
	case a2a.TaskStateWorking:
		return store.TaskRunning, true
	case a2a.TaskStateInputRequired:
		return store.TaskInputRequired, true
	case a2a.TaskStateCompleted:
		return store.TaskCompleted, true
	case a2a.TaskStateFailed:
		return store.TaskFailed, true
	case a2a.TaskStateCanceled:
		return store.TaskCanceled, true
	}
	return "", false
}

// final reports whether nothing more happens to the task without the
// client: it finished, or it waits for input.
func final(t *store.Task) bool {
	return t.State != store.TaskPending && t.State != store.TaskRunning
}

func agentMessage(t *store.Task, id string, parts ...*a2a.Part) *a2a.Message {
	return &a2a.Message{ID: id, ContextID: t.SessionID, TaskID: a2a.TaskID(t.ID), Role: a2a.MessageRoleAgent, Parts: parts}
}

// status is the task's A2A status: for input-required the approval
// request, for failed the error, for completed the reply.
func status(t *store.Task) a2a.TaskStatus {
	ts := t.UpdatedAt
	st := a2a.TaskStatus{State: state(t), Timestamp: &ts}
	switch {
	case t.State == store.TaskInputRequired && t.Approval != nil:
		st.Message = approvalMessage(t)
	case t.State == store.TaskFailed || (t.State == store.TaskPending && t.Error != ""):
		st.Message = agentMessage(t, t.ID+"-error", a2a.NewTextPart(t.Error))
	case t.State == store.TaskCompleted:
		st.Message = agentMessage(t, t.ID+"-reply", a2a.NewTextPart(reply(t)))
	}
	return st
}

// approvalMessage asks for a decision on the call the task waits on.
func approvalMessage(t *store.Task) *a2a.Message {
	a := t.Approval
	prompt := a.Prompt
	if prompt == "" {
		prompt = fmt.Sprintf("Approve the call of tool %s?", a.Tool)
	}
	var args any
	_ = json.Unmarshal(a.Arguments, &args)
	text := fmt.Sprintf("%s (tool %s, arguments %s). Answer on this task with \"approve\" or \"reject: REASON\".", prompt, a.Tool, a.Arguments)
	return agentMessage(t, t.ID+"-approval-"+a.CallID, a2a.NewTextPart(text),
		a2a.NewDataPart(map[string]any{"approval": map[string]any{"call_id": a.CallID, "tool": a.Tool, "arguments": args, "prompt": a.Prompt}}))
}

// reply is the final text of a completed task.
func reply(t *store.Task) string {
	var r struct {
		Reply string `json:"reply"`
	}
	_ = json.Unmarshal(t.Result, &r)
	return r.Reply
}

func inputMessage(t *store.Task) *a2a.Message {
	id := t.MessageID
	if id == "" {
		id = t.ID + "-input"
	}
	return &a2a.Message{ID: id, ContextID: t.SessionID, TaskID: a2a.TaskID(t.ID), Role: a2a.MessageRoleUser, Parts: a2a.ContentParts{a2a.NewTextPart(t.Input)}}
}

// stepMessage is the A2A message of a checkpoint; nil for steps the
// protocol has no message for (the user input, which history already
// starts with).
func stepMessage(t *store.Task, s store.Step) *a2a.Message {
	m := s.Message
	id := fmt.Sprintf("%s-step-%d", t.ID, s.Seq)
	switch m.Role {
	case llm.RoleAssistant:
		var parts a2a.ContentParts
		if m.Content != "" {
			parts = append(parts, a2a.NewTextPart(m.Content))
		}
		if len(m.ToolCalls) > 0 {
			calls := make([]map[string]any, len(m.ToolCalls))
			for i, c := range m.ToolCalls {
				var args any
				_ = json.Unmarshal(c.Arguments, &args)
				calls[i] = map[string]any{"id": c.ID, "name": c.Name, "arguments": args}
			}
			parts = append(parts, a2a.NewDataPart(map[string]any{"tool_calls": calls}))
		}
		return agentMessage(t, id, parts...)
	case llm.RoleTool:
		return agentMessage(t, id, a2a.NewDataPart(map[string]any{"tool_result": map[string]any{
			"tool_call_id": m.ToolCallID, "name": m.Name, "content": m.Content, "is_error": m.IsError}}))
	}
	return nil
}

// view is the A2A task for t with its checkpoints; historyLength, if
// set, keeps only the newest messages.
func view(t *store.Task, steps []store.Step, historyLength *int) *a2a.Task {
	out := &a2a.Task{ID: a2a.TaskID(t.ID), ContextID: t.SessionID, Status: status(t),
		Metadata: map[string]any{"hector": map[string]any{"agent": t.Agent, "attempts": t.Attempts}}}
	out.History = append(out.History, inputMessage(t))
	for _, s := range steps {
		if m := stepMessage(t, s); m != nil {
			out.History = append(out.History, m)
		}
	}
	if historyLength != nil && *historyLength >= 0 && len(out.History) > *historyLength {
		out.History = out.History[len(out.History)-*historyLength:]
	}
	if t.State == store.TaskCompleted {
		out.Artifacts = []*a2a.Artifact{responseArtifact(t)}
	}
	return out
}

func responseArtifact(t *store.Task) *a2a.Artifact {
	return &a2a.Artifact{ID: ResponseArtifact, Name: "response", Parts: a2a.ContentParts{a2a.NewTextPart(reply(t))}}
}

// tracker turns successive readings of a task into the events a stream
// sends: one status update per state change, a working update per new
// checkpoint, and the reply as an artifact before the completed status.
type tracker struct {
	state   store.TaskState
	attempt int
	seq     int
}

func newTracker(t *store.Task, steps []store.Step) *tracker {
	tr := &tracker{state: t.State, attempt: t.Attempts}
	if len(steps) > 0 {
		tr.seq = steps[len(steps)-1].Seq
	}
	return tr
}

func (tr *tracker) events(t *store.Task, steps []store.Step) []a2a.Event {
	var out []a2a.Event
	update := func(st a2a.TaskStatus) {
		out = append(out, &a2a.TaskStatusUpdateEvent{TaskID: a2a.TaskID(t.ID), ContextID: t.SessionID, Status: st})
	}
	now := time.Now().UTC()
	working := func(m *a2a.Message) { update(a2a.TaskStatus{State: a2a.TaskStateWorking, Timestamp: &now, Message: m}) }
	if t.State == store.TaskRunning && (tr.state != store.TaskRunning || t.Attempts != tr.attempt) {
		working(nil)
	}
	for _, s := range steps {
		if s.Seq <= tr.seq {
			continue
		}
		tr.seq = s.Seq
		if m := stepMessage(t, s); m != nil {
			working(m)
		}
	}
	if t.State != tr.state || t.Attempts != tr.attempt {
		switch t.State {
		case store.TaskCompleted:
			out = append(out, &a2a.TaskArtifactUpdateEvent{TaskID: a2a.TaskID(t.ID), ContextID: t.SessionID,
				Artifact: responseArtifact(t), LastChunk: true})
			update(status(t))
		case store.TaskPending:
			if t.Error != "" {
				update(status(t)) // a failed attempt, retried
			}
		case store.TaskRunning:
		default:
			update(status(t))
		}
	}
	tr.state, tr.attempt = t.State, t.Attempts
	return out
}
