package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hector-run/hector/internal/store"
)

// tasksCmd runs `hector tasks list|show|cancel|dlq|requeue` against a
// running server.
func tasksCmd(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: hector tasks list [--status S] [--agent A] [--limit N] | show ID | approve ID | reject ID [--reason R] | cancel ID | dlq | requeue ID\n" +
		"       [--server URL] [--api-key KEY] [--json]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("tasks "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	status := fs.String("status", "", "list: only tasks in this state ("+strings.Join(store.TaskStateNames(), ", ")+")")
	agent := fs.String("agent", "", "list: only tasks of this agent")
	limit := fs.Int("limit", 50, "list, dlq: at most this many tasks, newest first")
	reason := fs.String("reason", "", "approve, reject: the reason recorded with the decision (and, on reject, given to the model)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return 2
	}
	need := map[string]int{"list": 0, "show": 1, "cancel": 1, "dlq": 0, "requeue": 1, "approve": 1, "reject": 1}
	n, ok := need[sub]
	if !ok || len(pos) != n {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var method, path string
	var body io.Reader
	switch sub {
	case "approve", "reject":
		b, _ := json.Marshal(map[string]string{"reason": *reason})
		method, path, body = "POST", "/v1/tasks/"+url.PathEscape(pos[0])+"/"+sub, strings.NewReader(string(b))
	case "list", "dlq":
		q := url.Values{"limit": {fmt.Sprint(*limit)}}
		if *status != "" {
			q.Set("status", *status)
		}
		if *agent != "" {
			q.Set("agent", *agent)
		}
		method, path = "GET", "/v1/tasks?"+q.Encode()
		if sub == "dlq" {
			method, path = "GET", "/admin/tasks/dlq?"+q.Encode()
		}
	case "show":
		method, path = "GET", "/v1/tasks/"+url.PathEscape(pos[0])
	case "cancel":
		method, path = "POST", "/v1/tasks/"+url.PathEscape(pos[0])+"/cancel"
	case "requeue":
		method, path = "POST", "/admin/tasks/"+url.PathEscape(pos[0])+"/requeue"
	}
	_, out, err := c.do(method, path, body)
	if err != nil {
		return fail(stderr, "tasks "+sub, err)
	}
	if *asJSON {
		_, _ = stdout.Write(out)
		return 0
	}
	switch sub {
	case "list", "dlq":
		var page struct {
			Tasks []store.Task
			Next  string `json:"next_page_token"`
		}
		_ = json.Unmarshal(out, &page)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAGENT\tSTATE\tATTEMPTS\tCREATED\tDETAIL")
		for _, t := range page.Tasks {
			detail := t.Error
			if a := t.Approval; a != nil {
				detail = fmt.Sprintf("approve %s%s? %s", a.Tool, a.Arguments, a.Prompt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", t.ID, t.Agent, t.State, t.Attempts, t.MaxAttempts,
				t.CreatedAt.Local().Format(time.DateTime), oneLine(detail, 80))
		}
		_ = tw.Flush()
		if page.Next != "" {
			fmt.Fprintf(stdout, "(more: --json shows next_page_token)\n")
		}
	default:
		var t struct {
			store.Task
			Steps []store.Step
		}
		_ = json.Unmarshal(out, &t)
		fmt.Fprintf(stdout, "task %s  agent %s  session %s\nstate %s  attempts %d/%d\n", t.ID, t.Agent, t.SessionID, t.State, t.Attempts, t.MaxAttempts)
		if t.Error != "" {
			fmt.Fprintf(stdout, "error: %s\n", t.Error)
		}
		if a := t.Approval; a != nil {
			fmt.Fprintf(stdout, "waits for approval of %s %s (call %s): %s\n", a.Tool, a.Arguments, a.CallID, a.Prompt)
		}
		if len(t.Result) > 0 {
			fmt.Fprintf(stdout, "result: %s\n", t.Result)
		}
		for _, s := range t.Steps {
			m := s.Message
			line := m.Content
			if len(m.ToolCalls) > 0 {
				names := make([]string, len(m.ToolCalls))
				for i, tc := range m.ToolCalls {
					names[i] = tc.Name + string(tc.Arguments)
				}
				line = "calls " + strings.Join(names, ", ")
			}
			fmt.Fprintf(stdout, "  %d. [attempt %d] %s: %s\n", s.Seq, s.Attempt, m.Role, oneLine(line, 100))
		}
	}
	return 0
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
