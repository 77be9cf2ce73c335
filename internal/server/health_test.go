// Tests of the server on its own, without app.Run: they use its unexported
// helpers (newTestServer, httptestRecorder), so they stay in package server.

package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
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
	s, st := newTestServerWith(t, fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {auth: {api_keys: [{key: %s, role: viewer}]}}\n", key))
	_ = st.Close() // the database goes away
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
