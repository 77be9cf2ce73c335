package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A warning is printed as FILE:LINE:COL: warning: PATH: MESSAGE (and in
// --json's "warnings"), and the document is still valid: exit 0.
func TestValidateWarnings(t *testing.T) {
	f := writeConfig(t, "llms:\n  e: {provider: echo}\nagents:\n  a: {llm: e, tools: [run]}\ntools:\n  run:\n    type: command\n    allowed_commands:\n      - date\n      - sh\n")
	code, out, _ := runCLI("validate", f)
	if code != 0 || !strings.Contains(out, f+`:10:9: warning: tools.run.allowed_commands[1]: tool run allows "sh", which is a shell`) ||
		!strings.Contains(out, "valid (1 agents, 1 llms, 1 tools)") {
		t.Fatalf("%d %s", code, out)
	}
	code, out, _ = runCLI("validate", "--json", f)
	var res struct {
		Valid    bool `json:"valid"`
		Warnings []struct {
			Path    string `json:"path"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.Valid || len(res.Warnings) != 1 ||
		res.Warnings[0].Path != "tools.run.allowed_commands[1]" || res.Warnings[0].Line != 10 || res.Warnings[0].Column != 9 {
		t.Fatalf("%d %s %v", code, out, err)
	}
	if _, out, _ = runCLI("validate", "--json", "../../examples/quickstart.yaml"); !strings.Contains(out, `"warnings": []`) {
		t.Fatalf("no empty warnings list: %s", out)
	}
}

// The original Hector's plain key validates, with a warning that it is an
// admin key and how to name it.
func TestValidateWarnsOfPlainKeys(t *testing.T) {
	f := writeConfig(t, "llms:\n  e: {provider: echo}\nagents:\n  a: {llm: e}\nserver:\n  auth:\n    api_keys:\n      - plain-key-0123456789\n")
	code, out, _ := runCLI("validate", f)
	if code != 0 || !strings.Contains(out, f+`:8:9: warning: server.auth.api_keys[0]: a key written as a plain string has role admin`) ||
		strings.Contains(out, "plain-key-0123456789") {
		t.Fatalf("%d %s", code, out)
	}
}
