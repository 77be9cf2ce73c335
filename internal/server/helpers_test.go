package server

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// newTestServer returns a Server on an echo-agent snapshot and a real SQLite store.
func newTestServer(t *testing.T) (*Server, *store.Store) {
	t.Helper()
	return newTestServerWith(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\n")
}

// newTestServerWith is newTestServer on the configuration cfg.
func newTestServerWith(t *testing.T, cfg string) (*Server, *store.Store) {
	t.Helper()
	doc, errs := config.Parse([]byte(cfg), func(string) (string, bool) { return "", false })
	if errs != nil {
		t.Fatal(errs)
	}
	rt := &snapshot.Runtime{}
	snap, err := snapshot.Build(context.Background(), doc.Config, nil, snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	snap.Version, snap.Hash, snap.Source = 1, doc.Hash, "test"
	rt.Commit(snap)
	t.Cleanup(rt.Close)
	return &Server{Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, snap.Store
}

// httptestRecorder serves one request in-process. Streams are cut off
// after a second, as if the client left.
func httptestRecorder(s *Server, method, path, body string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
	req.Host = "127.0.0.1" // httptest's default, example.com, is not an allowed host on loopback
	s.Handler().ServeHTTP(rec, req)
	return rec
}
