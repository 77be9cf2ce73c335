package tool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/netguard"
)

// A tool of type mcp is a connection to an MCP server: a program Hector
// starts and talks to over its stdin and stdout, or a server over HTTP.
// Each of the server's tools (filtered by include and exclude, renamed by
// prefix) is a Tool of the agents that list the entry. The connection is
// kept for as long as some configuration snapshot uses it; a server that
// exits or drops the connection is reconnected with backoff, and its tools
// answer with an error that says so meanwhile. A server's
// notifications/tools/list_changed makes it list its tools again.

// Set is a tool entry that provides several tools, a list the entry may
// change while it runs (an MCP server's). Tools returns the current list;
// the caller must not modify it.
type Set interface {
	Tools() []Tool
}

// Gated is a Tool that decides itself whether its calls need a human's
// approval (an MCP server's tool, under its entry's require_approval).
type Gated interface {
	Tool
	Approval() (prompt string, needed bool)
}

// Limits of what an MCP server may hand the agent.
const (
	maxMCPTools       = 512       // tools offered by one server
	maxMCPDescription = 4096      // bytes of one tool's description
	maxMCPSchema      = 64 * 1024 // bytes of one tool's input schema
	mcpStderrTail     = 4096      // bytes of a stdio server's stderr kept for errors
)

// MCP restart backoff: the first retry after mcpRetryMin, doubling to
// mcpRetryMax; a connection that stayed up mcpStable starts over.
var (
	mcpRetryMin = 200 * time.Millisecond
	mcpRetryMax = 30 * time.Second
	mcpStable   = 30 * time.Second
)

// MCPServer is one connected MCP server. It is safe for concurrent use.
type MCPServer struct {
	name string
	cfg  config.Tool
	log  *slog.Logger

	wake chan struct{}   // a list_changed arrived
	stop chan struct{}   // Close was called
	done chan struct{}   // the supervisor has returned
	life context.Context // canceled by Close: bounds the supervisor's work
	end  context.CancelFunc

	guard *httpTool // an HTTP server's address guard, decided once

	mu      sync.Mutex
	conn    *mcpConn // nil while down
	down    error    // why conn is nil
	tools   []Tool
	starts  int
	closing sync.Once
}

// StartMCP connects to the MCP server cfg (validated, defaulted) names and
// lists its tools, within cfg.Timeout. On error nothing is left running
// and the error says why, with the tail of a stdio server's stderr. On
// success the caller owns the server and must Close it; until then it
// keeps the connection up, reconnecting when it drops, and tells log
// (nil: nowhere) when it stops, restarts or ignores a tool listing.
func StartMCP(ctx context.Context, name string, cfg config.Tool, log *slog.Logger) (*MCPServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &MCPServer{name: name, cfg: cfg, log: log.With("tool", name), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	m.life, m.end = context.WithCancel(context.Background())
	if cfg.URL != "" {
		// Decided once, as for an http tool: a reconnect does not resolve
		// the host again, so a DNS answer that changes later cannot move
		// a public server onto an internal address.
		m.guard = newHTTPWith(name, config.Tool{URL: cfg.URL, Timeout: cfg.Timeout}, netguard.Special)
		if _, err := m.guard.mayDialSpecial(ctx); err != nil {
			m.end()
			return nil, err
		}
	}
	c, err := m.connect(ctx)
	if err != nil {
		m.end()
		return nil, err
	}
	m.conn, m.starts = c, 1
	go m.supervise(c)
	return m, nil
}

// Tools returns the server's tools as the model sees them.
func (m *MCPServer) Tools() []Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tools
}

// Up reports whether the server is connected now.
func (m *MCPServer) Up() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn != nil
}

// Starts counts the connections made, the first included.
func (m *MCPServer) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}

// Close ends the connection and, for a stdio server, the process and
// everything it started. It waits for them; later calls do nothing.
func (m *MCPServer) Close() error {
	m.closing.Do(func() {
		m.end()
		close(m.stop)
	})
	<-m.done
	return nil
}

// live is the connection calls go to, or why there is none.
func (m *MCPServer) live() (*mcpConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil, m.down
	}
	return m.conn, nil
}

// connect makes one connection and lists its tools.
func (m *MCPServer) connect(ctx context.Context) (*mcpConn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout.D())
	defer cancel()
	c, err := dialMCP(ctx, m.cfg, m.guard, func() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	if err := m.list(ctx, c, m.Starts() == 0); err != nil {
		c.close()
		return nil, c.explain(err, true)
	}
	return c, nil
}

// list reads the server's tools and makes them the current ones. A name
// in require_approval that the server does not offer must not let a tool
// run unapproved (a typo, or a server renaming a gated tool): when strict
// (the first start) it is an error; later (list_changed, a reconnect) the
// listing is ignored and the earlier tools stay. (A name in include may be
// of a tool the server adds later.)
func (m *MCPServer) list(ctx context.Context, c *mcpConn, strict bool) error {
	var remote []*mcp.Tool
	for t, err := range c.session.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("listing its tools: %w", err)
		}
		if len(remote) == maxMCPTools {
			return fmt.Errorf("it offers more than %d tools", maxMCPTools)
		}
		remote = append(remote, t)
	}
	if err := m.checkNames(remote); err != nil {
		if strict {
			return err
		}
		m.log.Warn("MCP server's new tool list ignored: the earlier tools stay", "reason", err.Error())
		return nil
	}
	tools := m.wrap(remote)
	m.mu.Lock()
	m.tools = tools
	m.mu.Unlock()
	return nil
}

func (m *MCPServer) checkNames(remote []*mcp.Tool) error {
	offered := make([]string, len(remote))
	for i, t := range remote {
		offered[i] = t.Name
	}
	for _, l := range []struct {
		key   string
		names []string
	}{{"require_approval", m.cfg.RequireApproval}} {
		for _, n := range l.names {
			if n != "*" && !slices.Contains(offered, n) {
				return fmt.Errorf("%s names %q, which the server does not offer (it offers: %s)", l.key, n, strings.Join(offered, ", "))
			}
		}
	}
	return nil
}

// modelName is what model providers accept as a tool name.
var modelName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// wrap makes the agent tools of the server's tools that pass the filters.
// A name a model provider would refuse has its other characters replaced
// by '_'; of two tools that end up with one name, the first is kept.
func (m *MCPServer) wrap(remote []*mcp.Tool) []Tool {
	var out []Tool
	seen := map[string]bool{}
	for _, t := range remote {
		if (len(m.cfg.Include) > 0 && !slices.Contains(m.cfg.Include, t.Name)) || slices.Contains(m.cfg.Exclude, t.Name) {
			continue
		}
		name := m.cfg.Prefix + modelName.ReplaceAllString(t.Name, "_")
		if len(name) > 64 {
			name = name[:64]
		}
		if seen[name] || t.Name == "" {
			continue
		}
		seen[name] = true
		out = append(out, &mcpTool{srv: m, remote: t.Name, spec: llm.ToolSpec{
			Name: name, Description: truncate(t.Description, maxMCPDescription), Parameters: inputSchema(t.InputSchema),
		}})
	}
	return out
}

// inputSchema is a tool's parameters for the model: the server's JSON
// Schema when it is an object of bounded size, else one without
// parameters.
func inputSchema(s any) map[string]any {
	b, err := json.Marshal(s)
	var out map[string]any
	if err != nil || len(b) > maxMCPSchema || json.Unmarshal(b, &out) != nil || out == nil {
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	switch out["type"] {
	case nil:
		out["type"] = "object"
	case "object":
	default: // a provider refuses the whole tool list over one such schema
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// supervise keeps the server connected until Close: it follows
// list_changed, and when the connection ends it marks the server down and
// reconnects with backoff. The backoff grows across connections that end
// soon after they start, and starts over after one that lasted.
func (m *MCPServer) supervise(c *mcpConn) {
	defer close(m.done)
	wait := mcpRetryMin
	for {
		up := time.Now()
		if !m.serve(c) {
			return
		}
		down := fmt.Errorf("MCP server %s is restarting: %w", m.name, c.explain(errors.New("the connection ended"), true))
		m.mu.Lock()
		m.conn, m.down = nil, down
		m.mu.Unlock()
		m.log.Warn("MCP server stopped; restarting", "error", down.Error())
		if time.Since(up) > mcpStable {
			wait = mcpRetryMin
		}
		if c, wait = m.reconnect(wait); c == nil {
			return
		}
	}
}

// serve follows c until it ends (true) or Close is called (false, with c
// closed).
func (m *MCPServer) serve(c *mcpConn) bool {
	for {
		select {
		case <-m.stop:
			c.close()
			return false
		case <-c.ended:
			c.close()
			return true
		case <-c.exited: // nil for HTTP; a process that exited while an escaped child holds stdout
			c.close()
			return true
		case <-m.wake:
			ctx, cancel := context.WithTimeout(m.life, m.cfg.Timeout.D())
			_ = m.list(ctx, c, false) // on failure the last list stays
			cancel()
		}
	}
}

// reconnect connects again, first after wait, then doubling it; it returns
// the connection and the next wait, or nil once Close is called.
func (m *MCPServer) reconnect(wait time.Duration) (*mcpConn, time.Duration) {
	for attempt := 1; ; attempt++ {
		select {
		case <-m.stop:
			return nil, wait
		case <-time.After(wait):
		}
		wait = min(2*wait, mcpRetryMax)
		c, err := m.connect(m.life)
		m.mu.Lock()
		if err == nil {
			m.conn, m.down = c, nil
			m.starts++
			m.mu.Unlock()
			m.log.Info("MCP server restarted", "attempt", attempt)
			return c, wait
		}
		m.down = fmt.Errorf("MCP server %s is restarting (attempt %d failed: %w)", m.name, attempt, err)
		m.mu.Unlock()
		m.log.Warn("MCP server restart failed", "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
	}
}

// mcpTool is one of an MCP server's tools.
type mcpTool struct {
	srv    *MCPServer
	remote string // the server's name for it
	spec   llm.ToolSpec
}

func (t *mcpTool) Spec() llm.ToolSpec { return t.spec }

func (t *mcpTool) Approval() (string, bool) {
	return t.srv.cfg.ApprovalPrompt, t.srv.cfg.RequireApproval.For(t.remote)
}

// Call calls the tool on the server within the entry's timeout. The
// idempotency key of a task's call goes in the request's _meta as
// Idempotency-Key. Text content is the result; other content is described.
// A result the server marks as an error is returned as the error.
func (t *mcpTool) Call(ctx context.Context, args map[string]any) (string, error) {
	c, err := t.srv.live()
	if err != nil {
		return "", err
	}
	timeout := t.srv.cfg.Timeout.D()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	params := &mcp.CallToolParams{Name: t.remote, Arguments: args}
	if key := IdempotencyKey(ctx); key != "" {
		params.Meta = mcp.Meta{"Idempotency-Key": key}
	}
	res, err := c.session.CallTool(ctx, params)
	switch {
	case parent.Err() != nil:
		return "", fmt.Errorf("MCP server %s: %s: %w", t.srv.name, t.remote, parent.Err())
	case ctx.Err() == context.DeadlineExceeded:
		return "", fmt.Errorf("MCP server %s: %s timed out after %s", t.srv.name, t.remote, timeout)
	case err != nil:
		ended := false // the connection ended under the call: say why, if the process exited
		select {
		case <-c.ended:
			ended = true
		default:
		}
		return "", fmt.Errorf("MCP server %s: %s: %w", t.srv.name, t.remote, c.explain(err, ended))
	}
	out := resultText(res, t.srv.cfg.MaxOutputBytes)
	if res.IsError {
		return "", errors.New(out)
	}
	return out, nil
}

// resultText renders a tool result for the model, capped at max bytes.
func resultText(res *mcp.CallToolResult, max int) string {
	out := &capped{max: max}
	for i, c := range res.Content {
		if i > 0 {
			out.Write([]byte("\n"))
		}
		switch c := c.(type) {
		case *mcp.TextContent:
			out.Write([]byte(c.Text))
		case *mcp.ImageContent:
			fmt.Fprintf(out, "[image: %s, %d bytes]", c.MIMEType, len(c.Data))
		case *mcp.AudioContent:
			fmt.Fprintf(out, "[audio: %s, %d bytes]", c.MIMEType, len(c.Data))
		case *mcp.ResourceLink:
			fmt.Fprintf(out, "[resource: %s]", c.URI)
		case *mcp.EmbeddedResource:
			if r := c.Resource; r != nil && r.Text != "" {
				out.Write([]byte(r.Text))
			} else if r != nil {
				fmt.Fprintf(out, "[resource: %s, %d bytes]", r.URI, len(r.Blob))
			}
		default:
			fmt.Fprintf(out, "[%T content]", c)
		}
	}
	if len(res.Content) == 0 && res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		out.Write(b)
	}
	return out.String()
}
