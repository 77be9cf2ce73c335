package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db?sslmode=disable":      "postgres://REDACTED@h:5432/db?sslmode=disable",
		"https://TOKEN@github.example/x":                 "https://REDACTED@github.example/x",
		"https://api.example/v1?api_key=s3cr3t&model=x":  "https://api.example/v1?api_key=REDACTED&model=x",
		"https://h/p?access_token=a&X-Amz-Signature=b#f": "https://h/p?access_token=REDACTED&X-Amz-Signature=REDACTED#f",
		"postgres://h/db?password=pw&user=u":             "postgres://h/db?password=REDACTED&user=u",
		"http://u:p@h/%zz":                               "http://REDACTED@h/%zz", // does not parse: redacted anyway
		"https://h/orders/{id}?key={k}":                  "https://h/orders/{id}?key=REDACTED",
		"https://h/x?api_key=${KEY}":                     "https://h/x?api_key=${KEY}",
		"sqlite://.hector/hector.db":                     "sqlite://.hector/hector.db",
		"https://h/path@with-at?q=1":                     "https://h/path@with-at?q=1",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%s) = %s, want %s", in, got, want)
		}
	}
	msg := `Post "https://h/v1/chat?api-key=abc": dial tcp: refused; see http://u:pw@other/`
	if got := RedactText(msg); strings.Contains(got, "abc") || strings.Contains(got, "pw") || !strings.Contains(got, "dial tcp") {
		t.Errorf("RedactText: %s", got)
	}
}

// Passwords and secret query values in every URL field are redacted when
// the document is shown, and restored when a redacted document is sent
// back.
func TestURLSecretsRedactedAndRestored(t *testing.T) {
	doc := `llms:
  gpt: {provider: openai, model: m, api_key: k, base_url: "https://proxy.example/v1?api-key=llm-secret"}
  local: {provider: openai, model: m, api_key: k, base_url: "http://user:llm-pass@127.0.0.1:11434/v1"}
agents:
  a: {llm: gpt, tools: [orders]}
  remote: {type: a2a, url: "https://bot:agent-pass@agents.example/a2a/x"}
  gh: {type: a2a, url: "https://ghp_bare-token@agents.example/a2a/y"}
tools:
  orders: {type: http, url: "https://orders.example/api/{id}?token=tool-secret&x=1"}
database: {url: "postgres://h/db?password=db-secret&sslmode=disable"}
`
	red, err := Redact([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"llm-secret", "llm-pass", "agent-pass", "tool-secret", "db-secret", "ghp_bare-token"} {
		if strings.Contains(string(red), secret) {
			t.Errorf("%s shown:\n%s", secret, red)
		}
	}
	if !strings.Contains(string(red), "user:REDACTED@127.0.0.1") || !strings.Contains(string(red), "token=REDACTED&x=1") {
		t.Errorf("redacted:\n%s", red)
	}
	back, err := Unredact(red, []byte(doc))
	if err != nil || string(back) != doc {
		t.Fatalf("restored: %v\n%s", err, back)
	}
	// A new secret parameter with REDACTED has nothing to restore.
	edited := strings.Replace(string(red), "x=1", "x=1&secret=REDACTED", 1)
	if _, err := Unredact([]byte(edited), []byte(doc)); err == nil || !strings.Contains(err.Error(), "tools.orders.url") {
		t.Fatalf("unrestorable: %v", err)
	}
}

// A document can reference any variable of the server's environment; no
// message quotes its value (POST /admin/config/validate is an operator's,
// and outcomes are a viewer's).
func TestMessagesNeverQuoteEnvironmentValues(t *testing.T) {
	e := env(map[string]string{"OPENAI_API_KEY": "sk-live-SERVERSECRET", "LEVEL": "loud"})
	doc := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nlogger: {level: \"${OPENAI_API_KEY}\"}\n" +
		"a2a: {public_url: \"${OPENAI_API_KEY}\"}\nserver: {host: \"x ${LEVEL}\"}\n"
	_, errs := Parse([]byte(doc), e)
	var p Parser
	_, perrs := p.Parse([]byte(doc), e, nil)
	for _, es := range []Errors{errs, perrs} {
		if len(es) < 3 || strings.Contains(es.Error(), "SERVERSECRET") || strings.Contains(es.Error(), "loud") {
			t.Fatalf("%v", es)
		}
		if !strings.Contains(es.Error(), `got "${OPENAI_API_KEY}"`) {
			t.Fatalf("the reference is not shown: %v", es)
		}
	}
}
