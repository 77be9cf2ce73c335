package llm_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/llm/llmtest"
)

type provider struct {
	name  string
	start func(testing.TB) *llmtest.Server
	base  func(url string) string
}

var providers = []provider{
	{"openai", llmtest.NewOpenAI, func(u string) string { return u + "/v1" }},
	{"anthropic", llmtest.NewAnthropic, func(u string) string { return u }},
}

func client(t *testing.T, p provider, srv *llmtest.Server, retries int, timeout time.Duration) llm.Client {
	t.Helper()
	c, err := llm.New(config.LLM{Provider: p.name, Model: "test-model", APIKey: "k", BaseURL: p.base(srv.URL),
		MaxRetries: &retries, Timeout: config.Duration(timeout), MaxTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestProviders(t *testing.T) {
	for _, p := range providers {
		for _, stream := range []bool{false, true} {
			name := p.name
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				srv := p.start(t)
				c := client(t, p, srv, 0, 5*time.Second)
				var streamed strings.Builder
				var onText func(string)
				if stream {
					onText = func(s string) { streamed.WriteString(s) }
				}
				tools := []llm.ToolSpec{{Name: "clock", Description: "time", Parameters: map[string]any{
					"type": "object", "properties": map[string]any{"tz": map[string]any{"type": "string"}}, "required": []string{"tz"}}}}

				// 1. plain reply
				srv.Push(llmtest.Reply{Text: "hello there friend"})
				resp, err := c.Generate(context.Background(), llm.Request{System: "be kind",
					Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, Tools: tools}, onText)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Message.Content != "hello there friend" || resp.Usage.InputTokens != 10 {
					t.Fatalf("response %+v", resp)
				}
				if stream && streamed.String() != "hello there friend" {
					t.Fatalf("streamed %q", streamed.String())
				}
				got := srv.Requests()[0]
				if got.System != "be kind" || got.LastUser != "hi" || got.Stream != stream || got.Model != "test-model" ||
					len(got.Tools) != 1 || got.Tools[0] != "clock" {
					t.Fatalf("request seen by server: %+v", got)
				}

				// 2. tool call, then the result goes back
				srv.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "clock", Args: `{"tz":"UTC"}`}}},
					llmtest.Reply{Text: "it is noon"})
				msgs := []llm.Message{{Role: llm.RoleUser, Content: "time?"}}
				resp, err = c.Generate(context.Background(), llm.Request{Messages: msgs, Tools: tools}, onText)
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Message.ToolCalls) != 1 || resp.Message.ToolCalls[0].Name != "clock" || resp.Message.ToolCalls[0].ID != "c1" {
					t.Fatalf("tool calls %+v", resp.Message.ToolCalls)
				}
				var args map[string]string
				if err := json.Unmarshal(resp.Message.ToolCalls[0].Arguments, &args); err != nil || args["tz"] != "UTC" {
					t.Fatalf("arguments %s", resp.Message.ToolCalls[0].Arguments)
				}
				msgs = append(msgs, resp.Message, llm.Message{Role: llm.RoleTool, ToolCallID: "c1", Name: "clock", Content: "12:00"})
				resp, err = c.Generate(context.Background(), llm.Request{Messages: msgs, Tools: tools}, onText)
				if err != nil || resp.Message.Content != "it is noon" {
					t.Fatalf("after tool: %+v %v", resp, err)
				}
				if last := srv.Requests()[2]; last.LastTool != "12:00" || last.NumMessage != 3 {
					t.Fatalf("tool result not sent back: %+v", last)
				}
			})
		}
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			srv := p.start(t)
			c := client(t, p, srv, 2, 5*time.Second)
			srv.Push(llmtest.Reply{Status: 503}, llmtest.Reply{Status: 429}, llmtest.Reply{Text: "ok"})
			resp, err := c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}}, nil)
			if err != nil || resp.Message.Content != "ok" {
				t.Fatalf("%+v %v", resp, err)
			}
			if n := len(srv.Requests()); n != 3 {
				t.Fatalf("%d attempts, want 3", n)
			}
		})
	}
}

func TestErrorsAndTimeouts(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			srv := p.start(t)
			c := client(t, p, srv, 0, 200*time.Millisecond)
			srv.Push(llmtest.Reply{Status: 500})
			if _, err := c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}}, nil); err == nil || !strings.Contains(err.Error(), "500") {
				t.Fatalf("want a 500 error, got %v", err)
			}
			srv.Push(llmtest.Reply{Text: "late", Delay: 2 * time.Second})
			start := time.Now()
			_, err := c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}}, nil)
			if err == nil || time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("timeout not enforced: %v after %v", err, time.Since(start))
			}
		})
	}
}

func TestEcho(t *testing.T) {
	c, _ := llm.New(config.LLM{Provider: "echo"})
	var parts []string
	resp, err := c.Generate(context.Background(), llm.Request{System: "Be brief.", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hello world"}}},
		func(s string) { parts = append(parts, s) })
	if err != nil || resp.Message.Content != "[Be brief.] hello world" || strings.Join(parts, "") != resp.Message.Content || len(parts) < 2 {
		t.Fatalf("%+v %v %q", resp, err, parts)
	}
	resp, _ = c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: `/tool clock {"tz":"UTC"}`}}}, nil)
	if len(resp.Message.ToolCalls) != 1 || resp.Message.ToolCalls[0].Name != "clock" || string(resp.Message.ToolCalls[0].Arguments) != `{"tz":"UTC"}` {
		t.Fatalf("%+v", resp)
	}
	resp, _ = c.Generate(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleTool, Name: "clock", Content: "noon"}}}, nil)
	if resp.Message.Content != "clock: noon" {
		t.Fatalf("%+v", resp)
	}
}
