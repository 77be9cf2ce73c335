package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// mcpCost measures what an MCP tool call adds to a turn, in one run on one
// server: a turn whose model answers at once, the same turn with one call
// of an http tool (a local server answering at once) in between, and with
// one call of an MCP server's echo tool, over stdio (this program re-run
// as the test MCP server) and over streamable HTTP (the same server in
// process). Each tool turn costs a second model call; the http tool row
// is the baseline a tool call of any kind pays.
func mcpCost(d time.Duration) error {
	fake := llmtest.NewOpenAI(nil)
	defer fake.Close()
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastTool != "" || r.LastUser == "none" {
			return llmtest.Reply{Text: "done"}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: r.LastUser, Args: `{"text":"hi"}`}}}
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "echo: "+r.URL.Query().Get("text")) }))
	defer web.Close()
	srv := testsvc.MCPServer(false)
	remote := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	defer remote.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`llms:
  gpt: {provider: openai, model: bench, api_key: k, base_url: %q, max_retries: 0}
agents:
  a: {llm: gpt, tools: [web, stdio, remote]}
tools:
  web: {type: http, url: "%s/echo?text={text}"}
  stdio: {type: mcp, command: %q, env: {%s: "1"}, prefix: stdio_, include: [echo]}
  remote: {type: mcp, url: %q, prefix: http_, include: [echo]}
server: {port: 0}
logger: {level: error}
`, fake.URL+"/v1", web.URL, exe, testsvc.MCPServerEnv, remote.URL)
	in, err := start(cfg)
	if err != nil {
		return err
	}
	defer in.stop()
	rows := []struct{ name, tool string }{{"no tool", "none"}, {"http tool", "web"}, {"mcp stdio", "stdio_echo"}, {"mcp http", "http_echo"}}
	fmt.Printf("(h) an MCP tool call in a turn, against an http tool and no tool, same server and run, %s per run\n", d)
	fmt.Printf("    %-10s %8s %10s %10s %10s %14s\n", "turn", "clients", "req/s", "p50", "p99", "p50 - http")
	for _, n := range []int{1, 8} {
		var httpP50 time.Duration
		for _, row := range rows {
			body := `{"message":"` + row.tool + `"}`
			send := func(int, int) (*http.Response, error) {
				r, _ := http.NewRequest("POST", in.base+"/v1/agents/a/messages", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				return client.Do(r)
			}
			loadFunc(4, 300*time.Millisecond, nil, send) // warm up
			res := loadFunc(n, d, nil, send)
			p50 := pct(res.latencies, 0.5)
			delta := "-"
			if row.tool == "web" {
				httpP50 = p50
			} else if httpP50 > 0 {
				delta = fmt.Sprintf("%+.3f ms", float64(p50-httpP50)/float64(time.Millisecond))
			}
			fmt.Printf("    %-10s %8d %10.0f %10s %10s %14s\n", row.name, n, res.rps(), ms(p50), ms(pct(res.latencies, 0.99)), delta)
			if res.failed > 0 {
				return fmt.Errorf("%s: %d failed requests", row.name, res.failed)
			}
		}
	}
	return nil
}
