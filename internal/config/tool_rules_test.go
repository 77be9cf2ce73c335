package config

import (
	"strings"
	"testing"
)

// The rules for the security-relevant tool keys, each reported at the
// line of the offending key.
func TestToolSecurityRules(t *testing.T) {
	for _, tc := range []invalidCase{
		{"env on http", base + "tools:\n  t:\n    type: http\n    url: http://h/x\n    env: {A: b}\n", "tools.t.env", 9, "only valid for tools of type command"},
		{"env on agent", base + "tools:\n  t:\n    type: agent\n    agent: a\n    env: {A: b}\n", "tools.t.env", 9, "not valid for tools of type agent"},
		{"env name", base + "tools:\n  t:\n    type: command\n    allowed_commands: [date]\n    env:\n      1X: b\n", "tools.t.env.1X", 10, "invalid variable name"},
		{"env reserved", base + "tools:\n  t:\n    type: command\n    allowed_commands: [date]\n    env:\n      HECTOR_IDEMPOTENCY_KEY: b\n", "tools.t.env.HECTOR_IDEMPOTENCY_KEY", 10, "set by Hector"},
		{"env unset variable", base + "tools:\n  t:\n    type: command\n    allowed_commands: [date]\n    env:\n      TOKEN: ${NOPE_UNSET}\n", "tools.t.env.TOKEN", 10, "NOPE_UNSET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Parse([]byte(tc.src), env(nil))
			for _, e := range errs {
				if e.Path == tc.path && e.Line == tc.line && strings.Contains(e.Message, tc.msgContain) {
					return
				}
			}
			t.Fatalf("no error at %s line %d containing %q; got:\n%v", tc.path, tc.line, tc.msgContain, errs)
		})
	}
}

// A command tool's env expands ${VAR} and is redacted when shown.
func TestToolEnvAndRedirectDefaults(t *testing.T) {
	src := base + "tools:\n  c:\n    type: command\n    allowed_commands: [date]\n    env:\n      GH_TOKEN: ${GH_TOKEN}\n      MODE: fast\n"
	doc, errs := Parse([]byte(src), env(map[string]string{"GH_TOKEN": "ghp-very-secret"}))
	if errs != nil {
		t.Fatal(errs)
	}
	if e := doc.Config.Tools["c"].Env; e["GH_TOKEN"] != "ghp-very-secret" || e["MODE"] != "fast" {
		t.Fatalf("env %v", e)
	}
	red, err := Redact([]byte(strings.Replace(src, "${GH_TOKEN}", "ghp-literal-secret", 1)))
	if err != nil || strings.Contains(string(red), "ghp-literal-secret") || strings.Contains(string(red), "fast") {
		t.Fatalf("env values not redacted (%v):\n%s", err, red)
	}
}
