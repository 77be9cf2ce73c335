package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
)

// The hash callers see (/health, ETag, outcomes, history) is keyed with
// the database's secret key: a viewer who reads the redacted document
// cannot test guesses of a literal secret against it. It still tells
// documents apart, a literal secret included, and is the same everywhere.
func TestShownHashesAreKeyed(t *testing.T) {
	doc := func(password string) string {
		return strings.Replace(authConfig("x"), "server:\n", "tools: {api: {type: http, url: 'https://api.example.com/x', headers: {Authorization: 'Bearer "+password+"'}}}\nserver:\n", 1)
	}
	h := newHector(t, doc("hunter2"))
	health := func() string {
		_, body := h.get("/health")
		return body["config"].(map[string]any)["hash"].(string)
	}
	first := health()
	if len(first) != 64 || first == config.Hash([]byte(doc("hunter2"))) {
		t.Fatalf("/health shows the plain hash of the document: %s", first)
	}
	resp, _ := h.call("GET", "/admin/config", viewerKey, "")
	if resp.Header.Get("ETag") != `"`+first+`"` {
		t.Fatalf("ETag %s, /health %s", resp.Header.Get("ETag"), first)
	}
	h.write(doc("hunter3")) // only the secret changes
	if o := h.next(); o.Result != reload.Applied {
		t.Fatalf("%+v", o)
	}
	second := health()
	if second == first || second == config.Hash([]byte(doc("hunter3"))) {
		t.Fatalf("after the secret changed: %s (was %s)", second, first)
	}
	_, body := h.call("GET", "/admin/config/outcomes", viewerKey, "")
	if !strings.Contains(body, second) || strings.Contains(body, config.Hash([]byte(doc("hunter3")))) {
		t.Fatalf("outcomes do not show the public hash: %s", body)
	}
	_, body = h.call("GET", "/admin/config/history", viewerKey, "")
	var hist struct{ Versions []struct{ Hash string } }
	_ = json.Unmarshal([]byte(body), &hist)
	if len(hist.Versions) != 2 || hist.Versions[0].Hash != second || hist.Versions[1].Hash != first {
		t.Fatalf("history hashes: %s", body)
	}
	// The ETag still guards PUT.
	resp, _ = h.call("GET", "/admin/config", viewerKey, "")
	if resp, body := h.call("PUT", "/admin/config", adminKey, doc("hunter4"), "If-Match", resp.Header.Get("ETag")); resp.StatusCode != 200 {
		t.Fatalf("PUT with the shown ETag: %d %s", resp.StatusCode, body)
	}
}
