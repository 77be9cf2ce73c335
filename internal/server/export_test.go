package server

import (
	"io"
	"log/slog"
)

// What the tests of package server_test (the ones that start a whole
// process through app.Run, which imports this package) need from inside.

// The response bodies, to decode what the server answers.
type (
	MessageResponse = messageResponse
	APIError        = apiError
	AgentInfo       = agentInfo
)

// Public is the role of the routes that never need a key.
const Public = string(public)

// RouteRole is one entry of the route table, without its handler.
type RouteRole struct{ Pattern, Role string }

// RouteTable returns the route table: every route's pattern and the role
// it needs.
func RouteTable() []RouteRole {
	s := &Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.init()
	var table []RouteRole
	for _, rt := range s.routes() {
		table = append(table, RouteRole{rt.pattern, string(rt.role)})
	}
	return table
}
