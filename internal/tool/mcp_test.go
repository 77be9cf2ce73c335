package tool

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/testsvc"
)

func TestMain(m *testing.M) {
	testsvc.ServeMCPIfAsked() // this binary is also the tests' stdio MCP server
	os.Exit(m.Run())
}

// stdioServer is an entry for the test MCP server on stdio: this test
// binary, re-run. starts counts its processes.
func stdioServer(t *testing.T) (cfg config.Tool, starts string) {
	starts = filepath.Join(t.TempDir(), "starts")
	return config.Tool{Type: "mcp", Command: os.Args[0], Env: map[string]string{testsvc.MCPServerEnv: "1", testsvc.MCPStartsEnv: starts},
		Timeout: config.Duration(20 * time.Second), MaxOutputBytes: 65536}, starts
}

func startMCP(t *testing.T, cfg config.Tool) *MCPServer {
	t.Helper()
	m, err := StartMCP(context.Background(), "srv", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mcpTools(m *MCPServer) map[string]Tool {
	out := map[string]Tool{}
	for _, t := range m.Tools() {
		out[t.Spec().Name] = t
	}
	return out
}

func call(t *testing.T, tl Tool, args map[string]any) (string, error) {
	t.Helper()
	if tl == nil {
		t.Fatal("no such tool")
	}
	return tl.Call(context.Background(), args)
}

// A stdio server's tools, filtered and prefixed, are agent tools with the
// server's schemas; calls, error results, caps, non-text content, the
// idempotency key and the environment built from nothing all hold.
func TestMCPStdioTools(t *testing.T) {
	t.Setenv("HECTOR_SECRET_PROBE", "do-not-pass")
	cfg, starts := stdioServer(t)
	cfg.Prefix, cfg.Exclude, cfg.MaxOutputBytes = "t_", []string{"grow", "crash"}, 1000
	cfg.RequireApproval = config.Approval{"meta"}
	m := startMCP(t, cfg)
	tools := mcpTools(m)
	for _, want := range []string{"t_echo", "t_slow", "t_fail", "t_big", "t_meta", "t_environ", "t_pid", "t_image", "t_forget"} {
		if tools[want] == nil {
			t.Errorf("missing %s in %v", want, tools)
		}
	}
	if tools["t_grow"] != nil || tools["t_crash"] != nil || len(tools) != 9 {
		t.Errorf("exclude not applied: %v", tools)
	}
	spec := tools["t_echo"].Spec()
	if props, _ := spec.Parameters["properties"].(map[string]any); spec.Description != "Echoes its text." || props["text"] == nil {
		t.Errorf("echo spec %+v", spec)
	}
	if out, err := call(t, tools["t_echo"], map[string]any{"text": "hi"}); err != nil || out != "echo: hi" {
		t.Errorf("echo: %q %v", out, err)
	}
	if _, err := call(t, tools["t_fail"], nil); err == nil || err.Error() != "failed on purpose" {
		t.Errorf("fail: %v", err)
	}
	if out, _ := call(t, tools["t_big"], map[string]any{"bytes": 5000}); !strings.HasPrefix(out, strings.Repeat("x", 1000)+"\n[output truncated: 4000 more bytes]") {
		t.Errorf("big: %d bytes: %.80q", len(out), out)
	}
	if out, _ := call(t, tools["t_image"], nil); out != "[image: image/png, 16 bytes]" {
		t.Errorf("image: %q", out)
	}
	ctx := WithCallID(WithIdempotencyScope(context.Background(), "task-1"), "call-9")
	if out, err := tools["t_meta"].Call(ctx, nil); err != nil || out != "key=task-1/call-9" {
		t.Errorf("meta: %q %v", out, err)
	}
	env, _ := call(t, tools["t_environ"], nil)
	for _, line := range strings.Split(env, "\n") {
		name, _, _ := strings.Cut(line, "=")
		switch name {
		case "PATH", "HOME", "LANG", "TZ", "HECTOR_TOOL_RUN", testsvc.MCPServerEnv, testsvc.MCPStartsEnv:
		default:
			t.Errorf("the server inherited %s", line)
		}
	}
	if p, ok := tools["t_meta"].(Gated).Approval(); !ok || p != "" {
		t.Errorf("meta needs approval: %v", ok)
	}
	if _, ok := tools["t_echo"].(Gated).Approval(); ok {
		t.Error("echo needs no approval")
	}
	if n := testsvc.MCPStarts(starts); n != 1 || m.Starts() != 1 {
		t.Errorf("starts %d, %d", n, m.Starts())
	}

	pid, _ := call(t, tools["t_pid"], nil)
	m.Close()
	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, 0); err == nil {
		t.Errorf("server %d still runs after Close", n)
	}
	if _, err := call(t, tools["t_echo"], map[string]any{"text": "x"}); err == nil {
		t.Error("a call after Close succeeded")
	}
}

// A call is bounded by the entry's timeout.
func TestMCPTimeout(t *testing.T) {
	cfg, _ := stdioServer(t)
	m := startMCP(t, cfg)
	cfg.Timeout = config.Duration(300 * time.Millisecond)
	m.cfg = cfg
	if _, err := call(t, mcpTools(m)["slow"], map[string]any{"ms": 5000}); err == nil || !strings.Contains(err.Error(), "slow timed out after 300ms") {
		t.Errorf("slow: %v", err)
	}
}

// A server that cannot start, or whose tools the entry misnames, fails
// with a reason that names it: the program, its exit and stderr, the name.
func TestMCPStartFailures(t *testing.T) {
	base, _ := stdioServer(t)
	cases := map[string]struct {
		edit func(*config.Tool)
		want []string
	}{
		"no program": {func(c *config.Tool) { c.Command = "/nonexistent/mcp-server" }, []string{"starting /nonexistent/mcp-server"}},
		"exits at once": {func(c *config.Tool) {
			c.Command, c.Args, c.Env = "/bin/sh", []string{"-c", "echo bad config line 3 >&2; exit 2"}, nil
		},
			[]string{"connecting", "exit status 2", "stderr: bad config line 3"}},
		"secret on stderr": {func(c *config.Tool) {
			c.Command, c.Args = "/bin/sh", []string{"-c", "echo token $TOKEN is bad >&2; exit 2"}
			c.Env = map[string]string{"TOKEN": "s3cret-token-value"}
		}, []string{"stderr: token REDACTED is bad"}},
		"approval typo": {func(c *config.Tool) { c.RequireApproval = config.Approval{"delete"} }, []string{`require_approval names "delete", which the server does not offer (it offers: big, crash, echo,`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := StartMCP(context.Background(), "srv", cfg, nil)
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// notifications/tools/list_changed makes the server's tools be listed
// again.
func TestMCPListChanged(t *testing.T) {
	cfg, _ := stdioServer(t)
	m := startMCP(t, cfg)
	if _, err := call(t, mcpTools(m)["grow"], nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tool late", func() bool { return mcpTools(m)["late"] != nil })
	if out, err := call(t, mcpTools(m)["late"], nil); err != nil || out != "late here" {
		t.Errorf("late: %q %v", out, err)
	}
}

// A listing that drops a tool require_approval names is ignored: a server
// cannot shed a gate by renaming a tool. Without the gate, the tool goes.
func TestMCPListChangedKeepsGates(t *testing.T) {
	for _, gated := range []bool{true, false} {
		cfg, _ := stdioServer(t)
		if gated {
			cfg.RequireApproval = config.Approval{"echo"}
		}
		m := startMCP(t, cfg)
		if _, err := call(t, mcpTools(m)["forget"], nil); err != nil {
			t.Fatal(err)
		}
		if _, err := call(t, mcpTools(m)["grow"], nil); err != nil {
			t.Fatal(err)
		}
		if gated {
			time.Sleep(500 * time.Millisecond) // two list_changed handled, or not
			if tools := mcpTools(m); tools["echo"] == nil || tools["late"] != nil {
				t.Errorf("gated: the listing without echo was taken: %v", tools)
			}
		} else {
			waitFor(t, "late without echo", func() bool { tools := mcpTools(m); return tools["late"] != nil && tools["echo"] == nil })
		}
	}
}

// A schema a model provider would refuse (not an object) is replaced.
func TestMCPInputSchema(t *testing.T) {
	if s := inputSchema(map[string]any{"type": "string"}); s["type"] != "object" || len(s["properties"].(map[string]any)) != 0 {
		t.Errorf("string schema became %v", s)
	}
	if s := inputSchema(map[string]any{"properties": map[string]any{"a": map[string]any{"type": "string"}}}); s["type"] != "object" || s["properties"] == nil {
		t.Errorf("typeless schema became %v", s)
	}
}

// A stdio server that crashes is restarted with backoff; meanwhile its
// tools answer with an error naming the exit and stderr.
func TestMCPCrashRestart(t *testing.T) {
	old := mcpRetryMin
	mcpRetryMin = 700 * time.Millisecond
	t.Cleanup(func() { mcpRetryMin = old })
	cfg, starts := stdioServer(t)
	var logged testsvc.Buffer
	m, err := StartMCP(context.Background(), "srv", cfg, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tools := mcpTools(m)
	pid1, _ := call(t, tools["pid"], nil)
	if _, err := call(t, tools["crash"], nil); err == nil {
		t.Fatal("crash answered")
	}
	var down error
	waitFor(t, "the server to be marked down", func() bool {
		_, down = call(t, tools["echo"], map[string]any{"text": "x"})
		return down != nil && strings.Contains(down.Error(), "restarting")
	})
	for _, w := range []string{"MCP server srv is restarting", "exit status 3", "crashing on purpose"} {
		if !strings.Contains(down.Error(), w) {
			t.Errorf("down error %q lacks %q", down, w)
		}
	}
	waitFor(t, "the restart", func() bool { _, err := call(t, tools["echo"], map[string]any{"text": "x"}); return err == nil })
	pid2, _ := call(t, tools["pid"], nil)
	if pid1 == pid2 || m.Starts() != 2 || testsvc.MCPStarts(starts) != 2 {
		t.Errorf("pids %s %s, starts %d, %d", pid1, pid2, m.Starts(), testsvc.MCPStarts(starts))
	}
	log := logged.String()
	if !strings.Contains(log, `msg="MCP server stopped; restarting" tool=srv error="MCP server srv is restarting: the connection ended (it exited: exit status 3;`) ||
		!strings.Contains(log, `msg="MCP server restarted" tool=srv attempt=1`) {
		t.Errorf("log:\n%s", log)
	}
}

// An HTTP server, over streamable HTTP and over the older SSE transport:
// the entry's headers reach it, calls and list_changed work, and a
// redirect is refused.
func TestMCPHTTP(t *testing.T) {
	keyed := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer mcp-key" {
				http.Error(w, "no key", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	streamable, sse := testsvc.MCPServer(false), testsvc.MCPServer(false)
	mux.Handle("/mcp", keyed(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return streamable }, nil)))
	mux.Handle("/sse", keyed(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return sse }, nil)))
	mux.Handle("/moved", http.RedirectHandler("/mcp", http.StatusTemporaryRedirect))
	var stolen atomic.Int32 // requests that reached another origin
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) }))
	t.Cleanup(other.Close)
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { // an SSE server naming another origin for messages
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: endpoint\ndata: %s/steal\n\n", other.URL)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	for _, tr := range []struct{ path, transport string }{{"/mcp", "streamable"}, {"/sse", "sse"}} {
		t.Run(tr.transport, func(t *testing.T) {
			cfg := config.Tool{Type: "mcp", URL: hs.URL + tr.path, Transport: tr.transport, Headers: map[string]string{"Authorization": "Bearer mcp-key"},
				Timeout: config.Duration(10 * time.Second), MaxOutputBytes: 65536, Include: []string{"echo", "grow", "late"}}
			m := startMCP(t, cfg)
			if n := len(m.Tools()); n != 2 {
				t.Errorf("tools %v", mcpTools(m))
			}
			if out, err := call(t, mcpTools(m)["echo"], map[string]any{"text": "over http"}); err != nil || out != "echo: over http" {
				t.Errorf("echo: %q %v", out, err)
			}
			if tr.transport == "streamable" {
				if _, err := call(t, mcpTools(m)["grow"], nil); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the tool late", func() bool { return mcpTools(m)["late"] != nil })
			}
		})
	}
	t.Run("no key", func(t *testing.T) {
		_, err := StartMCP(context.Background(), "srv", config.Tool{Type: "mcp", URL: hs.URL + "/mcp", Transport: "streamable", Timeout: config.Duration(5 * time.Second)}, nil)
		if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Errorf("without the header: %v", err)
		}
	})
	t.Run("another origin", func(t *testing.T) {
		_, err := StartMCP(context.Background(), "srv", config.Tool{Type: "mcp", URL: hs.URL + "/elsewhere", Transport: "sse", Timeout: config.Duration(5 * time.Second),
			Headers: map[string]string{"Authorization": "Bearer mcp-key"}}, nil)
		// The SDK reports the refused write in more than one way; what
		// matters is that nothing reached the other origin.
		if err == nil || stolen.Load() != 0 {
			t.Errorf("another origin: %v; %d requests reached it", err, stolen.Load())
		}
	})
	t.Run("redirect", func(t *testing.T) {
		_, err := StartMCP(context.Background(), "srv", config.Tool{Type: "mcp", URL: hs.URL + "/moved", Transport: "streamable", Timeout: config.Duration(5 * time.Second),
			Headers: map[string]string{"Authorization": "Bearer mcp-key"}}, nil)
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("redirect: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The stderr tail keeps the last bytes from a whole line on.
func TestMCPStderrTail(t *testing.T) {
	tl := &tail{max: 16}
	if n, err := tl.Write([]byte("secret-abcdef-123\nline two\n")); n != 27 || err != nil {
		t.Errorf("a write longer than the tail took %d bytes, %v: os/exec's copy stops at a short write", n, err)
	}
	tl.Write([]byte("end"))
	if got := tl.String(); got != "line two\nend" {
		t.Errorf("tail %q", got)
	}
	short := &tail{max: 64}
	short.Write([]byte("all of it"))
	if short.String() != "all of it" {
		t.Errorf("short %q", short.String())
	}
}

// The values scrubbed from a server's error text: env and header values,
// the url's password and query values, long enough to be secrets.
func TestMCPSecretsOf(t *testing.T) {
	got := secretsOf(config.Tool{URL: "https://u:url-password-1@h/mcp?api_key=query-secret-22&v=1", Env: map[string]string{"A": "env-secret-333", "B": "true"},
		Headers: map[string]string{"Authorization": "Bearer header-secret-4444"}})
	if strings.Join(got, ",") != "Bearer header-secret-4444,query-secret-22,env-secret-333,url-password-1" {
		t.Errorf("secrets %q", got)
	}
	if !eventStream("Text/Event-Stream; charset=utf-8") || eventStream("application/json") {
		t.Error("eventStream")
	}
}
