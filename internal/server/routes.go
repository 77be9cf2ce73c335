package server

import (
	"net/http"

	"github.com/hector-run/hector/internal/config"
)

// Who may call a route once credentials (API keys or JWT issuers) are
// configured. Without any every route is open (the server warns when it
// listens beyond loopback). Sessions and tasks are further scoped by owner
// (see grant.scope): a user sees its own, stronger roles its tenant's.
const (
	public      config.Role = "public"            // never needs a credential: /health and agent cards
	metricsRole config.Role = "metrics"           // viewer, or public with server.metrics.public
	user                    = config.RoleUser     // talks to agents; its own sessions and tasks
	viewer                  = config.RoleViewer   // reads everything of its tenant, the configuration and metrics
	operator                = config.RoleOperator // changes what runs: cancel, approve, reload, rollback, requeue
	admin                   = config.RoleAdmin    // writes the configuration
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
	all := []route{
		{"GET /health", public, jsonBody, s.pinned(s.health)},
		{"GET /metrics", metricsRole, jsonBody, mainTenant(s.Metrics.Handler().ServeHTTP)},
	}
	agents := s.agentRoutes()
	all = append(all, agents...)
	// The same routes for one app, by name: for its own principals, and
	// for admins of the main tenant acting in it (see enterApp).
	for _, rt := range agents {
		all = append(all, s.inApp(rt))
	}
	for _, rt := range s.adminRoutes() {
		rt.handler = mainTenant(rt.handler)
		all = append(all, rt)
	}
	return all
}

// agentRoutes reach agents, sessions and tasks: the request's tenant's
// (the main configuration's, or its app's; see tenantRuntime), for the
// principals of every tenant, each within its own.
func (s *Server) agentRoutes() []route {
	return []route{
		{"GET /v1/agents", user, jsonBody, s.pinned(s.listAgents)},
		{"GET /v1/agents/{name}", user, jsonBody, s.pinned(s.getAgent)},
		// One snapshot per request: a reload during a turn does not affect
		// it; the next message, of any session, uses whatever is current.
		{"POST /v1/agents/{name}/messages", user, jsonBody, s.pinned(s.postMessage)},
		{"GET /v1/sessions/{id}", user, jsonBody, s.pinned(s.getSession)},
		// The OpenAI-compatible API (openai.go): agents as models.
		{"GET /v1/models", user, jsonBody, s.pinned(s.listModels)},
		{"GET /v1/models/{model}", user, jsonBody, s.pinned(s.getModel)},
		{"POST /v1/chat/completions", user, jsonBody, s.pinned(s.chatCompletions)},
		{"POST /v1/responses", user, jsonBody, s.pinned(s.responses)},

		{"POST /v1/agents/{name}/tasks", user, jsonBody, s.pinned(s.createTask)},
		{"GET /v1/tasks", user, jsonBody, s.pinned(s.listTasks)},
		{"GET /tasks", user, jsonBody, s.pinned(s.listTasks)},
		{"GET /v1/tasks/{id}", user, jsonBody, s.pinned(s.getTask)},
		{"POST /v1/tasks/{id}/cancel", user, jsonBody, s.pinned(s.cancelTask)},
		// Approvals decide what a tool may do. /tasks/... are the same
		// routes without the version prefix.
		{"POST /v1/tasks/{id}/approve", operator, jsonBody, s.pinned(s.approveTask)},
		{"POST /v1/tasks/{id}/reject", operator, jsonBody, s.pinned(s.rejectTask)},
		{"POST /tasks/{id}/approve", operator, jsonBody, s.pinned(s.approveTask)},
		{"POST /tasks/{id}/reject", operator, jsonBody, s.pinned(s.rejectTask)},
		{"GET /admin/tasks/dlq", viewer, jsonBody, s.pinned(s.deadLetters)},
		{"POST /admin/tasks/{id}/requeue", operator, jsonBody, s.pinned(s.requeueTask)},

		// Cards are public, as A2A intends (with keys they name the bearer
		// scheme). The endpoints need any key; deciding on a tool call over
		// A2A, and cancelling, need the operator role (a2ahttp.Caller).
		{"GET /.well-known/agent-card.json", public, jsonBody, s.pinned(s.rootCard)},
		{"GET /agents/{name}/.well-known/agent-card.json", public, jsonBody, s.pinned(s.agentCard)},
		{"GET /a2a/{name}/.well-known/agent-card.json", public, jsonBody, s.pinned(s.agentCard)},
		{"/a2a/{name}", user, protocolBody, s.serveA2A},
		{"/a2a/{name}/{rest...}", user, protocolBody, s.serveA2A},
		// Agents as MCP tools (mcp.go), streamable HTTP.
		{"/mcp", user, protocolBody, s.serveMCP},
	}
}

// adminRoutes manage the main configuration and the apps'
// (/admin/apps/{app} is the app's /admin/config); routes() serves them to
// the main tenant only.
func (s *Server) adminRoutes() []route {
	return []route{
		{"GET /admin/config", viewer, jsonBody, s.onPlane(s.getConfig)},
		{"PUT /admin/config", admin, documentBody, s.onPlane(s.putConfig)},
		{"POST /admin/config/validate", operator, documentBody, s.onPlane(s.validateConfig)},
		{"POST /admin/reload", operator, jsonBody, s.onPlane(s.adminReload)},
		{"GET /admin/config/history", viewer, jsonBody, s.onPlaneSnapshot(s.configHistory)},
		{"GET /admin/config/versions/{version}", viewer, jsonBody, s.onPlaneSnapshot(s.configVersion)},
		{"GET /admin/config/diff", viewer, jsonBody, s.onPlaneSnapshot(s.configDiff)},
		// A rollback that changes server.auth needs admin (see configRollback).
		{"POST /admin/config/rollback/{version}", operator, jsonBody, s.onPlane(s.configRollback)},
		{"GET /admin/config/events", viewer, jsonBody, s.configEvents},
		{"GET /admin/config/outcomes", viewer, jsonBody, s.onPlane(s.configOutcomes)},

		{"GET /admin/apps", viewer, jsonBody, s.listApps},
		{"POST /admin/apps", admin, jsonBody, s.createApp},
		{"GET /admin/apps/{app}", viewer, jsonBody, s.onPlane(s.getConfig)},
		{"PUT /admin/apps/{app}", admin, documentBody, s.onPlane(s.putConfig)},
		{"DELETE /admin/apps/{app}", admin, jsonBody, s.deleteApp},
		{"POST /admin/apps/{app}/validate", operator, documentBody, s.onPlane(s.validateConfig)},
		{"POST /admin/apps/{app}/reload", operator, jsonBody, s.onPlane(s.adminReload)},
		{"GET /admin/apps/{app}/history", viewer, jsonBody, s.onPlaneSnapshot(s.configHistory)},
		{"GET /admin/apps/{app}/versions/{version}", viewer, jsonBody, s.onPlaneSnapshot(s.configVersion)},
		{"GET /admin/apps/{app}/diff", viewer, jsonBody, s.onPlaneSnapshot(s.configDiff)},
		{"POST /admin/apps/{app}/rollback/{version}", operator, jsonBody, s.onPlane(s.configRollback)},
		{"GET /admin/apps/{app}/outcomes", viewer, jsonBody, s.onPlane(s.configOutcomes)},
	}
}
