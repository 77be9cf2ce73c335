// Tests of the server on its own, without app.Run: they use its unexported
// helpers (newTestServer, httptestRecorder), so they stay in package server.

package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/snapshot"
)

func TestHealthReportsDatabaseDown(t *testing.T) {
	srv, st := newTestServer(t)
	_ = st.Close()
	rec := httptestRecorder(srv, "GET", "/health", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"database":"unavailable"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// /health is public; once keys exist, what went wrong is for key holders.
func TestHealthDetailNeedsAKey(t *testing.T) {
	const key = "viewer-key-0123456789"
	doc, errs := config.Parse([]byte(fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {auth: {api_keys: [{key: %s, role: viewer}]}}\n", key)), func(string) (string, bool) { return "", false })
	if errs != nil {
		t.Fatal(errs)
	}
	rt := &snapshot.Runtime{}
	snap, err := snapshot.Build(context.Background(), doc.Config, nil, snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	rt.Commit(snap)
	t.Cleanup(rt.Close)
	s := &Server{Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_ = snap.Store.Close() // the database goes away
	anonymous := httptestRecorder(s, "GET", "/health", "")
	if anonymous.Code != 503 || strings.Contains(anonymous.Body.String(), "database_error") {
		t.Fatalf("without a key: %d %s", anonymous.Code, anonymous.Body)
	}
	req := httptest.NewRequest("GET", "/health", nil)
	req.Host = "127.0.0.1"
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "database_error") {
		t.Fatalf("with a key: %d %s", rec.Code, rec.Body)
	}
}
