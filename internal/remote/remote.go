// Package remote makes an agent served elsewhere over A2A usable as a
// Hector agent: its Client is an llm.Client whose "model" is the remote
// agent, so a remote agent takes the same paths as a local one (messages,
// tasks, the queue, A2A, delegation).
package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"

	"github.com/hector-run/hector/internal/llm"
)

// CardTTL is how long a fetched agent card is used before it is fetched
// again.
const CardTTL = 5 * time.Minute

const cardPath = "/.well-known/agent-card.json"

// Client calls one remote A2A agent. It is safe for concurrent use.
type Client struct {
	url     string
	headers map[string]string
	http    *http.Client

	mu      sync.Mutex
	client  *a2aclient.Client
	card    *a2a.AgentCard
	fetched time.Time
}

// New returns a client of the agent at url: its A2A endpoint, or its
// agent card URL. Nothing is fetched until the first call.
func New(url string, headers map[string]string) *Client {
	return &Client{url: url, headers: headers, http: &http.Client{Timeout: 10 * time.Minute}}
}

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
	base, path := c.url, cardPath
	if strings.HasSuffix(base, cardPath) {
		base = strings.TrimSuffix(base, cardPath)
	}
	var opts []agentcard.ResolveOption
	opts = append(opts, agentcard.WithPath(path))
	for k, v := range c.headers {
		opts = append(opts, agentcard.WithRequestHeader(k, v))
	}
	resolver := &agentcard.Resolver{Client: c.http, CardParser: a2av0.NewAgentCardParser()}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	card, err := resolver.Resolve(rctx, base, opts...)
	cancel()
	if err != nil {
		if c.client != nil {
			return c.client, nil // the cached card still serves
		}
		return nil, fmt.Errorf("remote agent %s: agent card: %w", c.url, err)
	}
	cl, err := a2aclient.NewFromCard(ctx, card,
		a2aclient.WithJSONRPCTransport(c.http), a2aclient.WithRESTTransport(c.http),
		a2av0.WithJSONRPCTransport(a2av0.JSONRPCTransportConfig{Client: c.http}),
		a2av0.WithRESTTransport(a2av0.RESTTransportConfig{Client: c.http}))
	if err != nil {
		return nil, fmt.Errorf("remote agent %s: %w", c.url, err)
	}
	c.client, c.card, c.fetched = cl, card, time.Now()
	return cl, nil
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
	if len(c.headers) > 0 {
		params := a2aclient.ServiceParams{}
		for k, v := range c.headers {
			params.Append(k, v)
		}
		ctx = a2aclient.AttachServiceParams(ctx, params)
	}
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(input))
	if conv := llm.Conversation(ctx); conv != "" {
		msg.ContextID = "hector-" + conv
	}
	res, err := cl.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if err != nil {
		return nil, fmt.Errorf("remote agent %s: %w", c.url, err)
	}
	text, err := answer(res)
	if err != nil {
		return nil, fmt.Errorf("remote agent %s: %w", c.url, err)
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
