package main

import (
	"os"
	"strings"
	"testing"
)

// hector config migrate prints the canonical document on stdout and each
// change on stderr; --write replaces the file, keeping its mode; validate
// suggests it, and stops suggesting once the file is migrated.
func TestConfigMigrateCommand(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-x")
	file := writeConfig(t, "version: \"1.0\"\nllms:\n  openai:\n    type: openai # the provider\n    model: gpt-4\n    api_key: ${OPENAI_API_KEY}\n"+
		"agents:\n  assistant:\n    name: \"Production Assistant\"\n    llm: openai\n")
	_ = os.Chmod(file, 0o640)
	before, _ := os.ReadFile(file)
	code, out, errOut := runCLI("validate", file)
	if code != 0 || !strings.Contains(out, "hector config migrate "+file+" --write") {
		t.Fatalf("validate: %d %s %s", code, out, errOut)
	}
	if code, out, _ := runCLI("validate", file, "--json"); code != 0 || !strings.Contains(out, `"migrate": true`) {
		t.Fatalf("validate --json: %s", out)
	}
	code, out, errOut = runCLI("config", "migrate", file)
	if code != 0 || !strings.Contains(out, "provider: openai # the provider") || !strings.Contains(out, "display_name: \"Production Assistant\"") ||
		!strings.Contains(out, "api_key: ${OPENAI_API_KEY}") || strings.Contains(out, "sk-x") {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	if n := strings.Count(errOut, "\n"); n != 3 || !strings.Contains(errOut, file+":4:5: llms.openai.type: the original Hector's spelling of provider") {
		t.Fatalf("changes listed (%d):\n%s", n, errOut)
	}
	if now, _ := os.ReadFile(file); string(now) != string(before) {
		t.Fatal("migrate without --write changed the file")
	}
	if code, _, errOut := runCLI("config", "migrate", file, "--write"); code != 0 || !strings.Contains(errOut, "migrated (3 change(s))") {
		t.Fatalf("--write: %d %s", code, errOut)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	if code, out, _ := runCLI("validate", file); code != 0 || strings.Contains(out, "warning") || strings.Contains(out, "migrate") {
		t.Fatalf("validate after --write: %d %s", code, out)
	}
	bad := writeConfig(t, "llms: {e: {type: echo, provider: openai}}\nagents: {a: {llm: e}}\n")
	if code, out, errOut := runCLI("config", "migrate", bad); code != 1 || out != "" || !strings.Contains(errOut, "1:12: llms.e.type: is \"echo\" but provider is \"openai\"") {
		t.Fatalf("invalid: %d %q %s", code, out, errOut)
	}
	if code, _, _ := runCLI("config", "migrate"); code != 2 {
		t.Fatalf("no file: %d", code)
	}
}
