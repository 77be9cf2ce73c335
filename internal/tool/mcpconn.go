package tool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/config"
)

// minSecret is the shortest value scrubbed from error text: shorter ones
// ("true", "info") are not secrets, and replacing them would garble it.
const minSecret = 8

// mcpStopGrace is how long a stdio server has to exit once its stdin is
// closed before it and everything it started are killed.
const mcpStopGrace = 2 * time.Second

// mcpConn is one MCP client session, with the process behind it for a
// stdio server.
type mcpConn struct {
	session *mcp.ClientSession
	ended   chan struct{} // closed when the session ends, for any reason
	cancel  context.CancelFunc
	secrets []string // secretsOf the entry

	// stdio only
	pipes   []io.Closer // our ends of stdin and stdout
	stderr  *tail
	procs   *tree
	exited  chan struct{} // closed once the process is waited for
	waitErr error         // its exit, once exited is closed

	closing sync.Once
}

// dialMCP connects to cfg's server, calling onListChanged when it says its
// tool list changed. On error nothing is left running.
func dialMCP(ctx context.Context, cfg config.Tool, guard *httpTool, onListChanged func()) (*mcpConn, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "hector", Version: "1"}, &mcp.ClientOptions{
		Capabilities:           &mcp.ClientCapabilities{}, // no roots: Hector shows the server no files
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { onListChanged() },
	})
	c := &mcpConn{ended: make(chan struct{}), secrets: secretsOf(cfg)}
	var transport mcp.Transport
	if cfg.Command != "" {
		t, err := c.start(cfg)
		if err != nil {
			return nil, err
		}
		transport = t
	} else {
		transport = httpTransport(cfg, guard)
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
		return nil, c.explain(fmt.Errorf("connecting: %w", err), true)
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
	c.pipes = []io.Closer{inW, outR}
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
		for _, p := range c.pipes { // closed by the session too, unless Connect failed without
			_ = p.Close()
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

// explain adds to err, once a stdio server has exited, its exit status
// and the tail of its stderr (waiting a moment for the exit when wait is
// set: a crash's exit follows its EOF closely). A running server's stderr
// is never added: it may hold what other calls logged. The entry's
// secrets (its env and header values) are replaced by REDACTED: a server
// may print what it was given, and the text reaches logs, the reload
// outcome and the model.
func (c *mcpConn) explain(err error, wait bool) error {
	if c.exited == nil {
		return c.scrub(err)
	}
	if wait {
		select {
		case <-c.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
	var why []string
	select {
	case <-c.exited:
		if c.waitErr != nil {
			why = append(why, "it exited: "+c.waitErr.Error())
		} else {
			why = append(why, "it exited")
		}
		if s := strings.TrimSpace(c.stderr.String()); s != "" {
			why = append(why, "stderr: "+s)
		}
	default:
	}
	if len(why) == 0 {
		return c.scrub(err)
	}
	return c.scrub(fmt.Errorf("%w (%s)", err, strings.Join(why, "; ")))
}

// scrub replaces the entry's secrets in err's text.
func (c *mcpConn) scrub(err error) error {
	msg := err.Error()
	clean := msg
	for _, v := range c.secrets {
		clean = strings.ReplaceAll(clean, v, "REDACTED")
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// secretsOf are the values of cfg's env and headers and the url's
// password and query values that are long enough to be secrets, longest
// first (so a secret containing another goes whole).
func secretsOf(cfg config.Tool) []string {
	var out []string
	keep := func(v string) {
		if len(v) >= minSecret {
			out = append(out, v)
		}
	}
	for _, m := range []map[string]string{cfg.Env, cfg.Headers} {
		for _, v := range m {
			keep(v)
		}
	}
	if u, err := url.Parse(cfg.URL); err == nil && cfg.URL != "" {
		if p, ok := u.User.Password(); ok {
			keep(p)
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				keep(v)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// httpTransport is the client side of an HTTP server: every request goes
// to the url's origin (an SSE endpoint event naming another is refused),
// with the entry's headers; redirects are refused; a response other than
// an event stream is cut at mcpMaxBody; and the address rule of http
// tools holds (a public host never reaches special-purpose addresses,
// checked on every address dialled), decided once by guard.
func httpTransport(cfg config.Tool, guard *httpTool) mcp.Transport {
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
		return &mcp.SSEClientTransport{Endpoint: cfg.URL, HTTPClient: hc}
	}
	return &mcp.StreamableClientTransport{Endpoint: cfg.URL, HTTPClient: hc, MaxRetries: 2}
}

// mcpMaxBody bounds one HTTP response from an MCP server that is not an
// event stream (whose events the SDK bounds one by one).
const mcpMaxBody = 16 << 20

// headerTransport sends requests to origin only, with the entry's headers.
type headerTransport struct {
	base    http.RoundTripper
	origin  string
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) != t.origin {
		return nil, fmt.Errorf("the MCP server sent Hector to %s, another origin than its url's; refused", origin(req.URL))
	}
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && req.Method != http.MethodGet && !eventStream(resp.Header.Get("Content-Type")) {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: mcpMaxBody}
	}
	return resp, err
}

// eventStream reports whether a Content-Type is text/event-stream, whose
// events the SDK bounds one by one. (GETs are the transports' event
// streams whatever they say.)
func eventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// cappedBody fails a read past its limit.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the MCP server's response is over %d bytes", mcpMaxBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// tail is an io.Writer that keeps the last max bytes written.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
	cut bool // bytes before buf were dropped
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p) // all of it is taken, whatever is kept: a short write would break the copy from the pipe
	if len(p) > t.max {
		p, t.cut = p[len(p)-t.max:], true
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf, t.cut = append(t.buf[:0], t.buf[over:]...), true
	}
	return n, nil
}

// String is the tail from its first whole line once something was cut,
// so that no line (a secret in it, which scrub could not recognise)
// shows only its end.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if t.cut {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		} else {
			s = ""
		}
	}
	return s
}
