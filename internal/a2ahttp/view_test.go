package a2ahttp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/store"
)

func step(seq int, m llm.Message) store.Step { return store.Step{Seq: seq, Message: m} }

// describe names events compactly: status:STATE, artifact.
func describe(evs []a2a.Event) string {
	var out []string
	for _, e := range evs {
		switch e := e.(type) {
		case *a2a.TaskStatusUpdateEvent:
			s := "status:" + strings.TrimPrefix(string(e.Status.State), "TASK_STATE_")
			if e.Status.Message != nil {
				s += "+msg"
			}
			out = append(out, s)
		case *a2a.TaskArtifactUpdateEvent:
			out = append(out, "artifact:"+e.Artifact.Parts[0].Text())
		}
	}
	return strings.Join(out, " ")
}

// TestTrackerEvents walks a task through its life and checks the events a
// stream sends at each reading.
func TestTrackerEvents(t *testing.T) {
	task := &store.Task{ID: "t1", SessionID: "s1", Agent: "a", Input: "hi", State: store.TaskPending}
	tr := newTracker(task, nil)
	var steps []store.Step
	read := func(want string) {
		t.Helper()
		if got := describe(tr.events(task, steps)); got != want {
			t.Fatalf("want %q, got %q", want, got)
		}
	}
	read("") // nothing changed
	task.State, task.Attempts = store.TaskRunning, 1
	steps = append(steps, step(1, llm.Message{Role: llm.RoleUser, Content: "hi"}))
	read("status:WORKING") // the user message has no event of its own
	steps = append(steps, step(2, llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c", Name: "pay", Arguments: json.RawMessage(`{}`)}}}))
	read("status:WORKING+msg")
	task.State, task.Approval = store.TaskInputRequired, &store.Approval{CallID: "c", Tool: "pay", Arguments: json.RawMessage(`{"x":1}`)}
	read("status:INPUT_REQUIRED+msg")
	task.State, task.Approval = store.TaskPending, nil
	read("") // decided: waiting for a worker, nothing to say yet
	task.State, task.Attempts = store.TaskRunning, 2
	steps = append(steps, step(3, llm.Message{Role: llm.RoleTool, ToolCallID: "c", Name: "pay", Content: "ok"}))
	read("status:WORKING status:WORKING+msg")
	task.State, task.Attempts, task.Error = store.TaskPending, 2, "attempt 2 of 4: model down"
	read("status:WORKING+msg") // a failed attempt, to be retried
	task.State, task.Attempts, task.Error = store.TaskRunning, 3, ""
	steps = append(steps, step(4, llm.Message{Role: llm.RoleAssistant, Content: "done"}))
	read("status:WORKING status:WORKING+msg")
	task.State, task.Result = store.TaskCompleted, json.RawMessage(`{"reply":"done"}`)
	read("artifact:done status:COMPLETED+msg")
	read("")
}

func TestViewMapsTheTask(t *testing.T) {
	task := &store.Task{ID: "t1", SessionID: "s1", Agent: "a", Input: "hi", MessageID: "m1", State: store.TaskCompleted,
		Result: json.RawMessage(`{"reply":"hello"}`), Attempts: 1}
	steps := []store.Step{step(1, llm.Message{Role: llm.RoleUser, Content: "hi"}), step(2, llm.Message{Role: llm.RoleAssistant, Content: "hello"})}
	v := view(task, steps, nil)
	if v.ID != "t1" || v.ContextID != "s1" || v.Status.State != a2a.TaskStateCompleted || len(v.History) != 2 ||
		v.History[0].ID != "m1" || v.History[0].Role != a2a.MessageRoleUser || v.History[1].Role != a2a.MessageRoleAgent ||
		len(v.Artifacts) != 1 || v.Artifacts[0].Parts[0].Text() != "hello" {
		t.Fatalf("view: %+v", v)
	}
	one := 1
	if v := view(task, steps, &one); len(v.History) != 1 || v.History[0].Parts[0].Text() != "hello" {
		t.Fatalf("historyLength 1: %+v", v.History)
	}
	for st, want := range map[store.TaskState]a2a.TaskState{store.TaskPending: a2a.TaskStateSubmitted, store.TaskRunning: a2a.TaskStateWorking,
		store.TaskInputRequired: a2a.TaskStateInputRequired, store.TaskFailed: a2a.TaskStateFailed, store.TaskCanceled: a2a.TaskStateCanceled} {
		if got := state(&store.Task{State: st}); got != want {
			t.Errorf("%s maps to %s, want %s", st, got, want)
		}
		if back, ok := storeState(want); !ok || back != st {
			t.Errorf("%s maps back to %s", want, back)
		}
	}
	if got := state(&store.Task{State: store.TaskPending, Attempts: 1}); got != a2a.TaskStateWorking {
		t.Errorf("a task waiting for its retry is %s", got)
	}
}

func TestDecisionAndText(t *testing.T) {
	for _, tc := range []struct {
		parts    a2a.ContentParts
		approved bool
		reason   string
		err      string
	}{
		{a2a.ContentParts{a2a.NewTextPart("approve")}, true, "", ""},
		{a2a.ContentParts{a2a.NewTextPart(" Yes ")}, true, "", ""},
		{a2a.ContentParts{a2a.NewTextPart("reject: too expensive")}, false, "too expensive", ""},
		{a2a.ContentParts{a2a.NewTextPart("No")}, false, "", ""},
		{a2a.ContentParts{a2a.NewDataPart(map[string]any{"approved": false, "reason": "later"})}, false, "later", ""},
		{a2a.ContentParts{a2a.NewTextPart("sure, why not")}, false, "", "approve"},
		{a2a.ContentParts{a2a.NewDataPart(map[string]any{"approved": "yes"})}, false, "", "approve"},
	} {
		d, err := decision(tc.parts, "pay")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: want an error, got %+v %v", tc.parts, d, err)
			}
			continue
		}
		if err != nil || d.Approved != tc.approved || d.Reason != tc.reason {
			t.Errorf("%v: %+v %v", tc.parts, d, err)
		}
	}
	text, err := textOf(a2a.ContentParts{a2a.NewTextPart("a"), a2a.NewDataPart(map[string]any{"k": 1})})
	if err != nil || text != "a\n{\"k\":1}" {
		t.Fatalf("text and data: %q %v", text, err)
	}
	for i, parts := range []a2a.ContentParts{{}, {a2a.NewTextPart("  ")}, {a2a.NewFileURLPart("http://x/y.png", "image/png")}} {
		if _, err := textOf(parts); err == nil {
			t.Errorf("case %d: %v accepted", i, parts)
		}
	}
}
