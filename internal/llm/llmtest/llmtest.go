// Package llmtest provides OpenAI- and Anthropic-compatible LLM servers for
// tests. They sit at the HTTP boundary, so the real SDK clients run against
// them. Replies are scripted (a queue) or computed (Respond); each can carry
// text, tool calls, a delay or an HTTP error.
package llmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer.
type Reply struct {
	Text      string
	ToolCalls []ToolCall
	Delay     time.Duration // wait before answering (ends early if the client goes away)
	Status    int           // non-zero: answer with this HTTP error status instead
}

// ToolCall is a scripted tool call.
type ToolCall struct {
	ID   string
	Name string
	Args string // JSON object
}

// Request is what the fake received, reduced to what tests assert on.
type Request struct {
	Model      string
	System     string
	LastUser   string
	LastTool   string // content of the last tool result, if the last message is one
	Stream     bool
	Tools      []string
	NumMessage int
}

// Server is a fake LLM API. Zero or more replies are queued with Push; when
// the queue is empty, Respond (if set) computes the reply, else the reply is
// "reply to: LAST USER MESSAGE".
type Server struct {
	URL     string
	Respond func(Request) Reply

	mu       sync.Mutex
	queue    []Reply
	requests []Request
	srv      *httptest.Server
}

// Push queues replies, answered in order.
func (s *Server) Push(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, r...)
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) next(r Request) Reply {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	if len(s.queue) > 0 {
		rep := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return rep
	}
	respond := s.Respond
	s.mu.Unlock()
	if respond != nil {
		return respond(r)
	}
	return Reply{Text: "reply to: " + r.LastUser}
}

func start(t testing.TB, h func(s *Server, w http.ResponseWriter, r *http.Request)) *Server {
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }))
	s.URL = s.srv.URL
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// wait sleeps for d or until the client goes away; it reports whether to go on.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// sse writes one server-sent event and flushes it.
func sse(w http.ResponseWriter, event string, data any) {
	b, _ := json.Marshal(data)
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
	w.(http.Flusher).Flush()
}

// chunks splits text into a few pieces so streaming is visible.
func chunks(text string) []string {
	if text == "" {
		return nil
	}
	parts := strings.SplitAfter(text, " ")
	return parts
}

func errorReply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("retry-after-ms", "5") // keep SDK retries fast in tests
	writeJSON(w, status, body)
}
