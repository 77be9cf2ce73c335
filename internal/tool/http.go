package tool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// httpTool calls a URL template. Each {name} placeholder is a required string
// argument, escaped for its place (path or query); POST, PUT and PATCH also
// take an optional "body" argument sent as the request body.
type httpTool struct {
	name   string
	cfg    config.Tool
	params []string
	query  int // byte offset of '?' in the template, or len(url)
	client *http.Client
}

func newHTTP(name string, cfg config.Tool) *httpTool {
	q := strings.IndexByte(cfg.URL, '?')
	if q < 0 {
		q = len(cfg.URL)
	}
	return &httpTool{name: name, cfg: cfg, params: config.URLParams(cfg.URL), query: q,
		client: &http.Client{Timeout: cfg.Timeout.D()}}
}

func (h *httpTool) hasBody() bool {
	return h.cfg.Method == "POST" || h.cfg.Method == "PUT" || h.cfg.Method == "PATCH"
}

func (h *httpTool) Spec() llm.ToolSpec {
	props := map[string]any{}
	for _, p := range h.params {
		props[p] = map[string]any{"type": "string"}
	}
	if h.hasBody() {
		props["body"] = map[string]any{"type": "string", "description": "Request body."}
	}
	desc := h.cfg.Description
	if desc == "" {
		desc = fmt.Sprintf("Calls %s %s.", h.cfg.Method, h.cfg.URL)
	}
	return llm.ToolSpec{Name: h.name, Description: desc, Parameters: map[string]any{
		"type": "object", "properties": props, "required": append([]string{}, h.params...),
	}}
}

// expand fills the URL template from args.
func (h *httpTool) expand(args map[string]any) (string, error) {
	var b strings.Builder
	last := 0
	for _, m := range config.URLParamIndex(h.cfg.URL) {
		v, err := stringArg(args, h.cfg.URL[m[2]:m[3]])
		if err != nil {
			return "", err
		}
		b.WriteString(h.cfg.URL[last:m[0]])
		if m[0] > h.query {
			b.WriteString(url.QueryEscape(v))
		} else {
			b.WriteString(url.PathEscape(v))
		}
		last = m[1]
	}
	b.WriteString(h.cfg.URL[last:])
	return b.String(), nil
}

func (h *httpTool) Call(ctx context.Context, args map[string]any) (string, error) {
	target, err := h.expand(args)
	if err != nil {
		return "", err
	}
	var body io.Reader
	if h.hasBody() {
		if s, ok := args["body"].(string); ok {
			body = strings.NewReader(s)
		}
	}
	req, err := http.NewRequestWithContext(ctx, h.cfg.Method, target, body)
	if err != nil {
		return "", err
	}
	for k, v := range h.cfg.Headers {
		req.Header.Set(k, v)
	}
	if key := IdempotencyKey(ctx); key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out := &capped{max: h.cfg.MaxOutputBytes}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return "", fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out.String(), nil
}
