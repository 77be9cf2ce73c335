package server

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocumentedEndpointsAreRouted: every "METHOD /path" in the README's API
// table reaches a handler (not the catch-all 404).
func TestDocumentedEndpointsAreRouted(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := newTestServer(t)
	re := regexp.MustCompile("\\| `(GET|POST|PUT|DELETE) (/[^`]*)` \\|")
	matches := re.FindAllStringSubmatch(string(b), -1)
	if len(matches) < 15 {
		t.Fatalf("found only %d endpoints in the README", len(matches))
	}
	for _, m := range matches {
		path := strings.NewReplacer("{name}", "a", "{id}", "some-session", "{v}", "1", "A", "1", "B", "1").Replace(m[2])
		rec := httptestRecorder(srv, m[1], path, `{"message":"hi"}`)
		var e apiError
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if e.Error.Code == "not_found" || rec.Code == 405 {
			t.Errorf("%s %s is documented but not routed (%d %s)", m[1], m[2], rec.Code, rec.Body)
		}
	}
}
