package tool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/netguard"
)

// mcpStopGrace is how long a stdio server has to exit once its stdin is
// closed before it and everything it started are killed.
const mcpStopGrace = 2 * time.Second

// mcpConn is one MCP client session, with the process behind it for a
// stdio server.
type mcpConn struct {
	session *mcp.ClientSession
	ended   chan struct{} // closed when the session ends, for any reason
	cancel  context.CancelFunc

	// stdio only
	stderr  *tail
	procs   *tree
	exited  chan struct{} // closed once the process is waited for
	waitErr error         // its exit, once exited is closed

	closing sync.Once
}

// dialMCP connects to cfg's server, calling onListChanged when it says its
// tool list changed. On error nothing is left running.
func dialMCP(ctx context.Context, name string, cfg config.Tool, onListChanged func()) (*mcpConn, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "hector", Version: "1"}, &mcp.ClientOptions{
		Capabilities:           &mcp.ClientCapabilities{}, // no roots: Hector shows the server no files
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { onListChanged() },
	})
	c := &mcpConn{ended: make(chan struct{})}
	var transport mcp.Transport
	if cfg.Command != "" {
		t, err := c.start(cfg)
		if err != nil {
			return nil, err
		}
		transport = t
	} else {
		t, err := httpTransport(ctx, name, cfg)
		if err != nil {
			return nil, err
		}
		transport = t
	}
	// The session's context outlives the handshake (the SSE transport
	// reads its event stream under it); ctx bounds the handshake only.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	session, err := client.Connect(sctx, transport, nil)
	if !stop() && err == nil {
		_ = session.Close()
		err = ctx.Err()
	}
	if err != nil {
		c.close()
		return nil, c.explain(fmt.Errorf("connecting: %w", err))
	}
	c.session = session
	go func() {
		_ = session.Wait()
		close(c.ended)
	}()
	return c, nil
}

// start starts a stdio server: its environment is built from nothing but
// the entry's env (as for a command tool), its processes are tracked as a
// command's are, and the tail of its stderr is kept for errors.
func (c *mcpConn) start(cfg config.Tool) (mcp.Transport, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(selfCommand(cfg.Command), cfg.Args...)
	cmd.Dir = cfg.WorkingDir
	marker := "HECTOR_TOOL_RUN=" + rand.Text()
	cmd.Env = append(environ(cfg.Env, ""), marker)
	c.procs = newTree(cmd, marker)
	cmd.Cancel = nil // there is no context: close ends the process
	c.stderr = &tail{max: mcpStderrTail}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	cmd.WaitDelay = time.Second // do not wait long on a stderr held by processes that escaped
	err = cmd.Start()
	inR.Close() // the child's ends
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.Command, err)
	}
	c.procs.started()
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = cmd.Wait()
		c.procs.finish()
		close(c.exited)
	}()
	return &mcp.IOTransport{Reader: outR, Writer: inW}, nil
}

// selfCommand is the program a stdio server's command names: "hector" is
// this server's own executable (so that hector mcp-example runs however
// Hector was started, go run included), anything else is looked up as
// written.
func selfCommand(command string) string {
	if command == "hector" {
		if exe, err := os.Executable(); err == nil {
			return exe
		}
	}
	return command
}

// close ends the session and, for a stdio server, waits for the process
// to exit, killing it and what it started after mcpStopGrace.
func (c *mcpConn) close() {
	c.closing.Do(func() {
		if c.session != nil {
			_ = c.session.Close() // closes stdin: a stdio server exits
		}
		if c.cancel != nil {
			c.cancel()
		}
		if c.exited == nil {
			return
		}
		select {
		case <-c.exited:
		case <-time.After(mcpStopGrace):
			c.procs.kill()
			<-c.exited
		}
	})
}

// explain adds to err what a stdio server's exit and stderr say.
func (c *mcpConn) explain(err error) error {
	if c.exited == nil {
		return err
	}
	var why []string
	select {
	case <-c.exited:
		if c.waitErr != nil {
			why = append(why, "it exited: "+c.waitErr.Error())
		} else {
			why = append(why, "it exited")
		}
	case <-time.After(100 * time.Millisecond): // a crash's exit follows its EOF closely
	}
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		why = append(why, "stderr: "+s)
	}
	if len(why) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(why, "; "))
}

// httpTransport is the client side of an HTTP server: the entry's headers
// go to the url's origin only, redirects are refused, and the address rule
// of http tools holds (a public host never reaches special-purpose
// addresses, checked on every address dialled).
func httpTransport(ctx context.Context, name string, cfg config.Tool) (mcp.Transport, error) {
	guard := newHTTPWith(name, config.Tool{URL: cfg.URL, Timeout: cfg.Timeout}, netguard.Special)
	if _, err := guard.mayDialSpecial(ctx); err != nil {
		return nil, err
	}
	base := &http.Transport{
		Proxy:                 nil, // a proxy would hide the dialled address from the guard
		DialContext:           guard.dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: cfg.Timeout.D(),
	}
	hc := &http.Client{
		Transport: &headerTransport{base: base, origin: guard.origin, headers: cfg.Headers},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the MCP server answered with a redirect, which Hector does not follow: set url to where it points")
		},
	}
	if cfg.Transport == "sse" {
		return &mcp.SSEClientTransport{Endpoint: cfg.URL, HTTPClient: hc}, nil
	}
	return &mcp.StreamableClientTransport{Endpoint: cfg.URL, HTTPClient: hc, MaxRetries: 2}, nil
}

// headerTransport adds the entry's headers to requests for origin.
type headerTransport struct {
	base    http.RoundTripper
	origin  string
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 && origin(req.URL) == t.origin {
		req = req.Clone(req.Context())
		for k, v := range t.headers {
			req.Header.Set(k, v)
		}
	}
	return t.base.RoundTrip(req)
}

// tail is an io.Writer that keeps the last max bytes written.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
