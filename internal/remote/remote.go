// Package remote makes an agent served elsewhere over A2A usable as a
// Hector agent: its Client is an llm.Client whose "model" is the remote
// agent, so a remote agent takes the same paths as a local one (messages,
// tasks, the queue, A2A, delegation).
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/netguard"
	"github.com/hector-run/hector/internal/observe"
)

// CardTTL is how long a fetched agent card is used before it is fetched
// again.
const CardTTL = 5 * time.Minute

const cardPath = "/.well-known/agent-card.json"

// Error is a failure of a remote agent: its card, its endpoint, or the
// task it ran. Its text names the agent's URL, with any password
// redacted (the caller names the agent).
type Error struct {
	Agent string // the agent's name in Hector's configuration; "" if not given
	URL   string // redacted
	Err   error
}

func (e *Error) Error() string { return "remote agent " + e.URL + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Client calls one remote A2A agent. It is safe for concurrent use.
type Client struct {
	name     string
	url      string
	redacted string
	secret   string // the URL's password, kept out of error texts
	headers  map[string]string
	http     *http.Client

	mu      sync.Mutex
	client  *a2aclient.Client
	card    *a2a.AgentCard
	fetched time.Time
}

// New returns a client of the agent at url: its A2A endpoint, or its
// agent card URL. Nothing is fetched until the first call.
func New(url string, headers map[string]string) *Client { return NewNamed("", url, headers) }

// NewNamed is New for the agent Hector's configuration names name: when
// url is a server's base URL whose well-known card is an index of several
// agents (as a Hector server with several agents serves), the agent of
// that name is the one called.
func NewNamed(name, rawURL string, headers map[string]string) *Client {
	c := &Client{name: name, url: rawURL, redacted: config.RedactURL(rawURL), headers: headers,
		http: &http.Client{Timeout: 10 * time.Minute}}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		c.secret, _ = u.User.Password()
	}
	return c
}

// fail wraps err as the agent's *Error, its text cleared of the URL's
// password.
func (c *Client) fail(err error) error {
	if c.secret != "" && strings.Contains(err.Error(), c.secret) {
		err = scrubbed{err, strings.ReplaceAll(err.Error(), c.secret, "REDACTED")}
	}
	return &Error{Agent: c.name, URL: c.redacted, Err: err}
}

// scrubbed is an error with another text, the cause kept for errors.Is.
type scrubbed struct {
	err  error
	text string
}

func (s scrubbed) Error() string { return s.text }
func (s scrubbed) Unwrap() error { return s.err }

// Card returns the remote agent's card, fetched at most every CardTTL.
func (c *Client) Card(ctx context.Context) (*a2a.AgentCard, error) {
	if _, err := c.get(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.card, nil
}

// get returns the protocol client, resolving the card when it is absent
// or older than CardTTL. A failed refresh keeps the old client.
func (c *Client) get(ctx context.Context) (*a2aclient.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && time.Since(c.fetched) < CardTTL {
		return c.client, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	card, err := c.resolve(rctx)
	cancel()
	if err != nil {
		if c.client != nil {
			return c.client, nil // the cached card still serves
		}
		return nil, c.fail(err)
	}
	if err := c.pinInterfaces(rctx, card); err != nil {
		if c.client != nil {
			return c.client, nil
		}
		return nil, c.fail(err)
	}
	cl, err := a2aclient.NewFromCard(ctx, card,
		a2aclient.WithJSONRPCTransport(c.http), a2aclient.WithRESTTransport(c.http),
		a2av0.WithJSONRPCTransport(a2av0.JSONRPCTransportConfig{Client: c.http}),
		a2av0.WithRESTTransport(a2av0.RESTTransportConfig{Client: c.http}))
	if err != nil {
		return nil, c.fail(err)
	}
	c.client, c.card, c.fetched = cl, card, time.Now()
	return cl, nil
}

// index is a server's list of agents, served at its well-known card URL
// in place of a card when it has several (Hector's form).
type index struct {
	Agents []struct {
		Name string `json:"name"`
		Card string `json:"card"`
	} `json:"agents"`
}

// errIndex is what the card parser returns for an index.
var errIndex = errors.New("an index of agents, not an agent card")

// resolve fetches the agent's card: at url's well-known card URL (or url
// itself when it is one), and, when that is an index of agents, at the
// card URL the index gives for the agent named c.name. The index's card
// URL is followed on url's own scheme, host and port, so the configured
// headers go nowhere else.
func (c *Client) resolve(ctx context.Context) (*a2a.AgentCard, error) {
	var idx *index
	card, err := c.fetchCard(ctx, c.url, &idx)
	if !errors.Is(err, errIndex) {
		return card, err
	}
	names := make([]string, len(idx.Agents))
	for i, a := range idx.Agents {
		names[i] = a.Name
		if a.Name != c.name || c.name == "" {
			continue
		}
		u, err := sameOrigin(c.url, a.Card)
		if err != nil {
			return nil, fmt.Errorf("the index's card URL of agent %s: %w", a.Name, err)
		}
		var again *index
		card, err := c.fetchCard(ctx, u, &again)
		if errors.Is(err, errIndex) {
			return nil, fmt.Errorf("the card URL of agent %s serves an index too", a.Name)
		}
		return card, err
	}
	base := strings.TrimRight(strings.TrimSuffix(c.redacted, cardPath), "/")
	return nil, fmt.Errorf("the server serves several agents (%s) and none is named %q: set url to %s/agents/NAME for the one to call",
		strings.Join(names, ", "), c.name, base)
}

// fetchCard fetches and parses the card at u (an endpoint or a card URL);
// an index is errIndex, with *idx set.
func (c *Client) fetchCard(ctx context.Context, u string, idx **index) (*a2a.AgentCard, error) {
	base := strings.TrimSuffix(u, cardPath)
	opts := []agentcard.ResolveOption{agentcard.WithPath(cardPath)}
	for k, v := range c.headers {
		opts = append(opts, agentcard.WithRequestHeader(k, v))
	}
	parse := a2av0.NewAgentCardParser()
	resolver := &agentcard.Resolver{Client: c.http, CardParser: func(b []byte) (*a2a.AgentCard, error) {
		var probe struct {
			Name   string          `json:"name"`
			Agents json.RawMessage `json:"agents"`
		}
		if json.Unmarshal(b, &probe) == nil && probe.Name == "" && len(probe.Agents) > 0 {
			var i index
			if err := json.Unmarshal(b, &i); err != nil {
				return nil, fmt.Errorf("an index of agents that does not parse: %w", err)
			}
			*idx = &i
			return nil, errIndex
		}
		return parse(b)
	}}
	card, err := resolver.Resolve(ctx, base, opts...)
	if err != nil {
		if errors.Is(err, errIndex) {
			return nil, errIndex
		}
		return nil, fmt.Errorf("agent card: %w", err)
	}
	return card, nil
}

// pinInterfaces keeps the card's interfaces that are on the configured
// URL's origin. An endpoint elsewhere is the remote server's choice, not
// the operator's: it is used only when the card offers none on the
// configured origin, no headers are configured (they go only where the
// operator pointed), and it is not a special-purpose address (netguard)
// unless the configured URL is one too.
func (c *Client) pinInterfaces(ctx context.Context, card *a2a.AgentCard) error {
	home := origin(c.url)
	var same, other []*a2a.AgentInterface
	for _, iface := range card.SupportedInterfaces {
		if origin(iface.URL) == home {
			same = append(same, iface)
		} else {
			other = append(other, iface)
		}
	}
	if len(same) > 0 || len(other) == 0 {
		card.SupportedInterfaces = same
		return nil
	}
	if len(c.headers) > 0 {
		return fmt.Errorf("the agent card's endpoints are all on other origins than %s (such as %s); the configured headers are sent only to %s: set url to the endpoint itself",
			home, config.RedactURL(origin(other[0].URL)), home)
	}
	homeSpecial := false
	if u, err := url.Parse(c.url); err == nil {
		homeSpecial = netguard.Resolve(ctx, u.Hostname()) != nil
	}
	for _, iface := range other {
		u, err := url.Parse(iface.URL)
		if err != nil {
			return fmt.Errorf("the agent card's endpoint %q: %w", config.RedactURL(iface.URL), err)
		}
		if err := netguard.Resolve(ctx, u.Hostname()); err != nil && !homeSpecial {
			return fmt.Errorf("the agent card's endpoint %s is refused: %w", config.RedactURL(origin(iface.URL)), err)
		}
	}
	return nil
}

// origin is a URL's scheme://host[:port], lower case; "" when it does not parse.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// sameOrigin returns ref's path and query on base's scheme, host and port.
func sameOrigin(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	r = b.ResolveReference(r)
	r.Scheme, r.Host, r.User = b.Scheme, b.Host, b.User
	return r.String(), nil
}

// Generate sends the newest user message to the remote agent and returns
// its answer as the assistant's. The conversation's earlier messages are
// not sent: the remote agent keeps them, in the context named after the
// conversation (llm.Conversation: the Hector session), so each session
// continues one remote context.
func (c *Client) Generate(ctx context.Context, req llm.Request, onText func(string)) (*llm.Response, error) {
	var input string
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == llm.RoleUser {
			input = req.Messages[i].Content
			break
		}
	}
	cl, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	params := a2aclient.ServiceParams{}
	for k, v := range c.headers {
		params.Append(k, v)
	}
	// The remote agent continues the trace of this turn (W3C traceparent).
	if tp := observe.TraceParent(ctx); tp != "" {
		params.Append("traceparent", tp)
	}
	if len(params) > 0 {
		ctx = a2aclient.AttachServiceParams(ctx, params)
	}
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(input))
	if conv := llm.Conversation(ctx); conv != "" {
		msg.ContextID = "hector-" + conv
	}
	res, err := cl.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if err != nil {
		return nil, c.fail(err)
	}
	text, err := answer(res)
	if err != nil {
		return nil, c.fail(err)
	}
	if onText != nil {
		onText(text)
	}
	return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: text}}, nil
}

// answer is the text of a remote agent's result: a message, or a
// completed task's artifacts (else its status message).
func answer(res a2a.SendMessageResult) (string, error) {
	switch r := res.(type) {
	case *a2a.Message:
		return partsText(r.Parts), nil
	case *a2a.Task:
		switch r.Status.State {
		case a2a.TaskStateCompleted:
			var b strings.Builder
			for _, a := range r.Artifacts {
				b.WriteString(partsText(a.Parts))
			}
			if b.Len() == 0 && r.Status.Message != nil {
				return partsText(r.Status.Message.Parts), nil
			}
			return b.String(), nil
		default:
			why := ""
			if r.Status.Message != nil {
				why = ": " + partsText(r.Status.Message.Parts)
			}
			return "", fmt.Errorf("task %s ended %s%s", r.ID, r.Status.State, why)
		}
	}
	return "", errors.New("empty answer")
}

func partsText(parts a2a.ContentParts) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text())
	}
	return b.String()
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}
