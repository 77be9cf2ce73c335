package config

import (
	"strings"
	"testing"
)

const secretDoc = `# deployment
llms:
  a: {provider: openai, model: m, api_key: sk-plain-secret}   # trailing comment
  b: {provider: openai, model: m, api_key: "sk-double\"quoted"}
  c: {provider: openai, model: m, api_key: 'sk-single''quoted'}
  d: {provider: openai, model: m, api_key: "${OPENAI_API_KEY}"}
agents:
  x: {llm: a}
tools:
  t:
    type: http
    url: http://h/{q}
    headers:
      Authorization: Bearer tok-123
      X-Ref: ${REF:-none}
database: {url: "sqlite://u:pw-secret@/x.db"}
server:
  auth:
    api_keys:
      - {key: admin-key-0123456789, role: admin}
`

func TestRedactSplicesOnlySecrets(t *testing.T) {
	out, err := Redact([]byte(secretDoc))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, secret := range []string{"sk-plain-secret", `sk-double\"quoted`, "sk-single''quoted", "tok-123", "pw-secret", "admin-key-0123456789"} {
		if strings.Contains(got, secret) {
			t.Errorf("%s not redacted:\n%s", secret, got)
		}
	}
	want := strings.NewReplacer(
		"api_key: sk-plain-secret}", "api_key: REDACTED}",
		`"sk-double\"quoted"`, `"REDACTED"`,
		`'sk-single''quoted'`, `'REDACTED'`,
		"Bearer tok-123", "REDACTED",
		"u:pw-secret@", "u:REDACTED@",
		"key: admin-key-0123456789", "key: REDACTED",
		"${REF:-none}", "${REF:-REDACTED}", // a default is written in the document: it may be the secret
	).Replace(secretDoc)
	if got != want {
		t.Fatalf("layout changed:\n%s\nwant:\n%s", got, want)
	}
	back, err := Unredact(out, []byte(secretDoc))
	if err != nil {
		t.Fatal(err)
	}
	e := env(map[string]string{"OPENAI_API_KEY": "k"})
	doc1, errs1 := Parse(back, e)
	doc2, errs2 := Parse([]byte(secretDoc), e)
	if errs1 != nil || errs2 != nil || doc1.Config.LLMs["a"].APIKey != "sk-plain-secret" ||
		doc1.Config.LLMs["b"].APIKey != doc2.Config.LLMs["b"].APIKey || doc1.Config.LLMs["c"].APIKey != "sk-single'quoted" ||
		doc1.Config.Tools["t"].Headers["Authorization"] != "Bearer tok-123" || doc1.Config.Database.URL != "sqlite://u:pw-secret@/x.db" {
		t.Fatalf("unredact did not restore the secrets: %v %v\n%s", errs1, errs2, back)
	}
	// Nothing to restore from: the path is named.
	if _, err := Unredact(out, []byte("llms: {}\n")); err == nil || !strings.Contains(err.Error(), "llms.a.api_key") {
		t.Fatalf("%v", err)
	}
}
