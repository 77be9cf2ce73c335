package server

import (
	"net/http"

	"github.com/hector-run/hector/internal/config"
)

// Who may call a route once server.auth.api_keys lists keys. Without keys
// every route is open (the server warns when it listens beyond loopback).
const (
	public   config.Role = "public"            // never needs a key: /health and agent cards
	anyRole              = config.RoleViewer   // any valid key: talking to agents, reading tasks and sessions
	operator             = config.RoleOperator // changes what runs: cancel, approve, reload, rollback, requeue
	admin                = config.RoleAdmin    // writes the configuration
)

// route is one entry of the route table: the method and pattern, the role
// it needs, which request bodies it takes, and its handler.
type route struct {
	pattern string
	role    config.Role
	body    bodyKind
	handler http.HandlerFunc
}

// bodyKind names the media types a route's request body may have. A body
// of a form or text type is refused on every route, so a web page cannot
// post to Hector (see crossSite).
type bodyKind int

const (
	jsonBody     bodyKind = iota // application/json, application/*+json
	documentBody                 // a configuration document: JSON or YAML
	// protocolBody is JSON that the handler reads itself, to answer a body
	// too large or too slow in its protocol's own error shape (A2A).
	protocolBody
)

// routes is every route Hector serves, declared once. The policy is the
// table: tests walk it, and the README's endpoint tables are checked
// against it.
func (s *Server) routes() []route {
	return []route{
		{"GET /health", public, jsonBody, s.pinned(s.health)},
		{"GET /metrics", anyRole, jsonBody, s.Metrics.Handler().ServeHTTP},

		{"GET /v1/agents", anyRole, jsonBody, s.pinned(s.listAgents)},
		{"GET /v1/agents/{name}", anyRole, jsonBody, s.pinned(s.getAgent)},
		// One snapshot per request: a reload during a turn does not affect
		// it; the next message, of any session, uses whatever is current.
		{"POST /v1/agents/{name}/messages", anyRole, jsonBody, s.pinned(s.postMessage)},
		{"GET /v1/sessions/{id}", anyRole, jsonBody, s.pinned(s.getSession)},

		{"POST /v1/agents/{name}/tasks", anyRole, jsonBody, s.pinned(s.createTask)},
		{"GET /v1/tasks", anyRole, jsonBody, s.pinned(s.listTasks)},
		{"GET /tasks", anyRole, jsonBody, s.pinned(s.listTasks)},
		{"GET /v1/tasks/{id}", anyRole, jsonBody, s.pinned(s.getTask)},
		{"POST /v1/tasks/{id}/cancel", operator, jsonBody, s.pinned(s.cancelTask)},
		// Approvals decide what a tool may do. /tasks/... are the same
		// routes without the version prefix.
		{"POST /v1/tasks/{id}/approve", operator, jsonBody, s.pinned(s.approveTask)},
		{"POST /v1/tasks/{id}/reject", operator, jsonBody, s.pinned(s.rejectTask)},
		{"POST /tasks/{id}/approve", operator, jsonBody, s.pinned(s.approveTask)},
		{"POST /tasks/{id}/reject", operator, jsonBody, s.pinned(s.rejectTask)},
		{"GET /admin/tasks/dlq", anyRole, jsonBody, s.pinned(s.deadLetters)},
		{"POST /admin/tasks/{id}/requeue", operator, jsonBody, s.pinned(s.requeueTask)},

		// Cards are public, as A2A intends (with keys they name the bearer
		// scheme). The endpoints need any key; deciding on a tool call over
		// A2A, and cancelling, need the operator role (a2ahttp.Caller).
		{"GET /.well-known/agent-card.json", public, jsonBody, s.pinned(s.rootCard)},
		{"GET /agents/{name}/.well-known/agent-card.json", public, jsonBody, s.pinned(s.agentCard)},
		{"GET /a2a/{name}/.well-known/agent-card.json", public, jsonBody, s.pinned(s.agentCard)},
		{"/a2a/{name}", anyRole, protocolBody, s.serveA2A},
		{"/a2a/{name}/{rest...}", anyRole, protocolBody, s.serveA2A},

		{"GET /admin/config", anyRole, jsonBody, s.getConfig},
		{"PUT /admin/config", admin, documentBody, s.putConfig},
		{"POST /admin/config/validate", operator, documentBody, s.validateConfig},
		{"POST /admin/reload", operator, jsonBody, s.adminReload},
		{"GET /admin/config/history", anyRole, jsonBody, s.pinned(s.configHistory)},
		{"GET /admin/config/versions/{version}", anyRole, jsonBody, s.pinned(s.configVersion)},
		{"GET /admin/config/diff", anyRole, jsonBody, s.pinned(s.configDiff)},
		// A rollback that changes server.auth needs admin (see configRollback).
		{"POST /admin/config/rollback/{version}", operator, jsonBody, s.configRollback},
		{"GET /admin/config/events", anyRole, jsonBody, s.configEvents},
		{"GET /admin/config/outcomes", anyRole, jsonBody, s.configOutcomes},
	}
}
