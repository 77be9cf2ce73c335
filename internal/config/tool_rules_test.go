package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The rules for the security-relevant tool keys, each reported at the
// line of the offending key.
func TestToolSecurityRules(t *testing.T) {
	for _, tc := range []invalidCase{
		{"host placeholder", base + "tools:\n  t:\n    type: http\n    url: http://{host}/x\n", "tools.t.url", 8, "placeholder {host} is in the scheme, host or port"},
		{"port placeholder", base + "tools:\n  t:\n    type: http\n    url: https://api.example.com:{port}/x\n", "tools.t.url", 8, "{port}"},
		{"host part placeholder", base + "tools:\n  t:\n    type: http\n    url: https://{tenant}.example.com/x\n", "tools.t.url", 8, "{tenant}"},
		{"userinfo placeholder", base + "tools:\n  t:\n    type: http\n    url: https://{u}@api.example.com/x\n", "tools.t.url", 8, "{u}"},
		{"host suffix placeholder", base + "tools:\n  t:\n    type: http\n    url: https://api.example.com{rest}\n", "tools.t.url", 8, "{rest}"},
		{"follow_redirects value", base + "tools:\n  t:\n    type: http\n    url: http://h/x\n    follow_redirects: always\n", "tools.t.follow_redirects", 9, "must be one of same_origin, any, none"},
		{"follow_redirects on command", base + "tools:\n  t:\n    type: command\n    allowed_commands: [date]\n    follow_redirects: any\n", "tools.t.follow_redirects", 9, "only valid for tools of type http"},
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

// A command tool's env expands ${VAR}, is redacted when shown, and an
// http tool's follow_redirects defaults to same_origin.
func TestToolEnvAndRedirectDefaults(t *testing.T) {
	src := base + "tools:\n  c:\n    type: command\n    allowed_commands: [date]\n    env:\n      GH_TOKEN: ${GH_TOKEN}\n      MODE: fast\n" +
		"  h:\n    type: http\n    url: http://h/items/{id}?q={q}\n"
	doc, errs := Parse([]byte(src), env(map[string]string{"GH_TOKEN": "ghp-very-secret"}))
	if errs != nil {
		t.Fatal(errs)
	}
	if e := doc.Config.Tools["c"].Env; e["GH_TOKEN"] != "ghp-very-secret" || e["MODE"] != "fast" {
		t.Fatalf("env %v", e)
	}
	if f := doc.Config.Tools["h"].FollowRedirects; f != "same_origin" {
		t.Fatalf("follow_redirects default %q", f)
	}
	red, err := Redact([]byte(strings.Replace(src, "${GH_TOKEN}", "ghp-literal-secret", 1)))
	if err != nil || strings.Contains(string(red), "ghp-literal-secret") || strings.Contains(string(red), "fast") {
		t.Fatalf("env values not redacted (%v):\n%s", err, red)
	}
}

// An allowed program that runs other programs is a warning, not an
// error, at the entry's line; Parse and a Parser that patches the
// document report the same warnings.
func TestLauncherWarnings(t *testing.T) {
	src := strings.Replace(bigDoc(10, func(int) string { return "" }), "server:",
		"  run:\n    type: command\n    allowed_commands: [date, env, /usr/bin/python3.12, uptime,\n      sh]\nserver:", 1)
	doc, errs := Parse([]byte(src), testEnv)
	if errs != nil {
		t.Fatal(errs)
	}
	line := strings.Count(src[:strings.Index(src, "allowed_commands")], "\n") + 1
	want := []struct {
		path string
		line int
		msg  string
	}{
		{"tools.run.allowed_commands[1]", line, `tool run allows "env", which runs the program named in its arguments`},
		{"tools.run.allowed_commands[2]", line, `"/usr/bin/python3.12", which is an interpreter`},
		{"tools.run.allowed_commands[4]", line + 1, `"sh", which is a shell`},
	}
	if len(doc.Warnings) != len(want) {
		t.Fatalf("warnings: %v", doc.Warnings)
	}
	for i, w := range want {
		got := doc.Warnings[i]
		if got.Path != w.path || got.Line != w.line || got.Column == 0 || !strings.Contains(got.Message, w.msg) {
			t.Errorf("warning %d: %+v, want %s at line %d: %s", i, got, w.path, w.line, w.msg)
		}
	}
	if s := doc.Warnings[0].Warning(); !strings.HasPrefix(s, fmt.Sprintf("tools.run.allowed_commands[1] (line %d:", line)) {
		t.Errorf("Warning() = %q", s)
	}
	var p Parser
	if _, errs := p.Parse([]byte(src), testEnv, nil); errs != nil {
		t.Fatal(errs)
	}
	edited := strings.Replace(src, `"agent 3"`, `"agent three"`, 1)
	inc, errs := p.Parse([]byte(edited), testEnv, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	if _, _, _, ok := inc.Patched(); !ok {
		t.Fatal("the edit was not patched, so the patched path is not tested")
	}
	full, _ := Parse([]byte(edited), testEnv)
	if !reflect.DeepEqual(inc.Warnings, full.Warnings) || len(inc.Warnings) != 3 {
		t.Fatalf("patched warnings %v, Parse %v", inc.Warnings, full.Warnings)
	}
	if doc, _ := Parse([]byte(base), testEnv); doc.Warnings != nil {
		t.Fatalf("warnings for a plain document: %v", doc.Warnings)
	}
}

// shell: true defeats the allowlist as a shell in it would: a warning.
func TestShellWarning(t *testing.T) {
	src := base + "tools:\n  sh:\n    type: command\n    allowed_commands: [uptime]\n    shell: true\n"
	doc, errs := Parse([]byte(src), testEnv)
	if errs != nil {
		t.Fatal(errs)
	}
	if len(doc.Warnings) != 1 || doc.Warnings[0].Path != "tools.sh.shell" || !strings.Contains(doc.Warnings[0].Message, "/bin/sh") {
		t.Fatalf("warnings: %v", doc.Warnings)
	}
}

// The two kinds of command tool, and what each refuses.
func TestFixedCommandRules(t *testing.T) {
	for doc, want := range map[string]string{
		"tools: {t: {type: command, command: ./d.sh, allowed_commands: [ls]}}":   "tools.t.command: set command (a fixed program) or allowed_commands",
		"tools: {t: {type: command, command: '{prog}'}}":                         "tools.t.command: must be a program name or path",
		"tools: {t: {type: command, command: ./d.sh, shell: true}}":              "tools.t.shell: not valid with command",
		"tools: {t: {type: command, args: [x]}}":                                 "tools.t.args: only valid with command",
		"tools: {t: {type: command}}":                                            "tools.t.allowed_commands: required: list the programs this tool may run, or set command",
		"tools: {t: {type: http, url: 'https://x', command: ./d.sh, args: [a]}}": "tools.t.command: not valid for tools of type http (only valid for tools of type command or mcp)",
		"tools: {t: {type: agent, agent: a, command: ./d.sh}}":                   "tools.t.command: not valid for tools of type agent",
	} {
		_, errs := Parse([]byte(doc+"\n"+minimal), env(nil))
		if errs == nil || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s\n got %v\nwant %s", doc, errs, want)
		}
	}
	doc, errs := Parse([]byte("tools: {t: {type: command, command: sh, args: [-c, '{script}']}}\n"+minimal), env(nil))
	if errs != nil || len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0].Message, `runs "sh", which is a shell, with the model's values in its args`) {
		t.Fatalf("a launcher with placeholders: %v %v", errs, doc.Warnings)
	}
	if doc, errs := Parse([]byte("tools: {t: {type: command, command: sh, args: [-c, 'make deploy']}}\n"+minimal), env(nil)); errs != nil || doc.Warnings != nil {
		t.Fatalf("a fixed script: %v %v", errs, doc.Warnings)
	}
}

// What an mcp entry refuses, each naming its key; and what it reads:
// require_approval as true or a list, transport defaulted for a url.
func TestMCPToolRules(t *testing.T) {
	for doc, want := range map[string]string{
		"tools: {t: {type: mcp}}":                                           "tools.t.command: required for tools of type mcp",
		"tools: {t: {type: mcp, command: s, url: 'https://x/mcp'}}":         "tools.t.url: set command (a stdio server) or url (an HTTP server), not both",
		"tools: {t: {type: mcp, command: s, transport: sse}}":               "tools.t.transport: only valid with url",
		"tools: {t: {type: mcp, command: s, headers: {A: b}}}":              "tools.t.headers: only valid with url",
		"tools: {t: {type: mcp, url: 'https://x/mcp', args: [a]}}":          "tools.t.args: only valid with command",
		"tools: {t: {type: mcp, url: 'https://x/{p}'}}":                     "tools.t.url: must be an http or https URL without placeholders",
		"tools: {t: {type: mcp, url: 'https://x/mcp', transport: ws}}":      "tools.t.transport",
		"tools: {t: {type: mcp, command: s, prefix: 'a b'}}":                "tools.t.prefix: must be at most 40 letters",
		"tools: {t: {type: mcp, command: s, include: ['']}}":                "tools.t.include[0]: must be a tool name",
		"tools: {t: {type: mcp, command: s, description: d}}":               "tools.t.description: not valid for tools of type mcp",
		"tools: {t: {type: mcp, command: s, shell: true}}":                  "tools.t.shell: not valid for tools of type mcp",
		"tools: {t: {type: mcp, command: s, env: {HECTOR_TOOL_RUN: x}}}":    "tools.t.env.HECTOR_TOOL_RUN: HECTOR_TOOL_RUN is set by Hector",
		"tools: {t: {type: http, url: 'https://x', require_approval: [a]}}": "tools.t.require_approval: a list of tool names is only valid for tools of type mcp",
		"tools: {t: {type: http, url: 'https://x', include: [a]}}":          "tools.t.include: not valid for tools of type http",
		"tools: {t: {type: mcp, command: s, approval_prompt: p}}":           "tools.t.approval_prompt: only valid with require_approval",
		"tools: {t: {type: mcp, command: s, require_approval: maybe}}":      `tools.t.require_approval: expected true or false, got "maybe"`,
	} {
		_, errs := Parse([]byte(doc+"\n"+minimal), env(nil))
		if errs == nil || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s\n got %v\nwant %s", doc, errs, want)
		}
	}
	doc, errs := Parse([]byte("tools:\n  a: {type: mcp, url: 'https://x/mcp', require_approval: true}\n  b: {type: mcp, command: s, require_approval: [x, y]}\n"+minimal), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	a, b := doc.Config.Tools["a"], doc.Config.Tools["b"]
	if !a.RequireApproval.All() || a.Transport != "streamable" || b.RequireApproval.All() || !b.RequireApproval.For("y") || b.RequireApproval.For("z") || b.Transport != "" {
		t.Errorf("a %+v, b %+v", a, b)
	}
}
