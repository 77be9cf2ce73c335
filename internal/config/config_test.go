package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const valid = `version: 1
name: demo
llms:
  local:
    provider: echo
  gpt:
    provider: openai
    model: gpt-4o-mini
    api_key: ${OPENAI_API_KEY}
    temperature: 0.2
agents:
  assistant:
    llm: local
    instruction: "Be brief. Key ${MISSING:-none}."
    tools: [clock, fetch]
tools:
  clock:
    type: command
    allowed_commands: [date]
  fetch:
    type: http
    url: https://example.com/items/{id}
server:
  port: 0
  shutdown_timeout: 5s
logger:
  level: debug
`

func TestParseValid(t *testing.T) {
	doc, errs := Parse([]byte(valid), env(map[string]string{"OPENAI_API_KEY": "sk-test"}))
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	c := doc.Config
	if doc.Format != "yaml" || len(doc.Hash) != 64 {
		t.Errorf("format %q hash %q", doc.Format, doc.Hash)
	}
	if got := c.LLMs["gpt"].APIKey; got != "sk-test" {
		t.Errorf("api_key expanded to %q", got)
	}
	if got := c.Agents["assistant"].Instruction; got != "Be brief. Key none." {
		t.Errorf("instruction %q", got)
	}
	// defaults
	if c.Agents["assistant"].MaxIterations != DefaultMaxIterations ||
		c.Tools["clock"].Timeout.D() != DefaultToolTimeout ||
		c.Tools["fetch"].Method != "GET" ||
		c.Server.Host != DefaultHost || c.Server.ListenPort() != 0 ||
		c.Server.ShutdownTimeout.D() != 5*time.Second ||
		c.Logger.Format != "text" || *c.LLMs["gpt"].MaxRetries != DefaultLLMRetries {
		t.Errorf("defaults not applied: %+v", c)
	}
	if p, _ := doc.Pos("agents.assistant.llm"); p != (Pos{13, 5}) {
		t.Errorf("position of agents.assistant.llm = %v", p)
	}
}

func TestParseJSON(t *testing.T) {
	src := `{
  "llms": {"e": {"provider": "echo"}},
  "agents": {"a": {"llm": "e", "max_iterations": 3}}
}`
	doc, errs := Parse([]byte(src), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	if doc.Format != "json" || doc.Config.Agents["a"].MaxIterations != 3 {
		t.Fatalf("%+v", doc)
	}
	_, errs = Parse([]byte(`{"agents": {"a": {"llm": "e", "max_iteratons": 3}}}`), env(nil))
	if len(errs) == 0 || !strings.Contains(errs.Error(), `did you mean "max_iterations"`) || errs[0].Line != 1 {
		t.Fatalf("JSON errors: %v", errs)
	}
}

// base is prefixed to most invalid cases; it is valid on its own and 4 lines long.
const base = `llms:
  e: {provider: echo}
agents:
  a: {llm: e}
`

type invalidCase struct {
	name, src  string
	path       string
	line       int
	msgContain string
}

var invalidCases = []invalidCase{
	{"empty", ``, "(document)", 1, "empty"},
	{"blank api key", base + "server:\n  auth: {api_keys: [{key: \"                    \", role: admin}]}\n", "server.auth.api_keys[0].key", 6, "white space"},
	{"padded api key", base + "server:\n  auth: {api_keys: [{key: \" padded-key-0123456789\", role: admin}]}\n", "server.auth.api_keys[0].key", 6, "white space"},
	{"bad allowed host", base + "server: {allowed_hosts: [\"http://x\"]}\n", "server.allowed_hosts[0]", 5, "without scheme"},
	{"bad cors origin", base + "server: {cors: {allowed_origins: [\"app.example.com\"]}}\n", "server.cors.allowed_origins[0]", 5, "must be an origin"},
	{"negative conns", base + "server: {max_connections_per_client: -1}\n", "server.max_connections_per_client", 5, "negative"},
	{"syntax", base + "name: a\n c: d\n", "(document)", 6, "syntax error"},
	{"tab indentation", base + "server:\n\tport: 1\n", "(document)", 6, "syntax error"},
	{"root not mapping", "- a\n- b\n", "(document)", 1, "expected a mapping"},
	{"unknown top key", base + "agnets: {}\n", "agnets", 5, `did you mean "agents"`},
	{"unknown agent key", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    instrution: hi\n", "agents.a.instrution", 6, `did you mean "instruction"`},
	{"unknown llm key", "llms:\n  e:\n    provider: echo\n    modle: x\n" + "agents:\n  a: {llm: e}\n", "llms.e.modle", 4, `did you mean "model"`},
	{"no agents", "llms:\n  e: {provider: echo}\n", "agents", 1, "at least one agent"},
	{"agent without llm", "llms:\n  e: {provider: echo}\nagents:\n  a: {instruction: hi}\n", "agents.a.llm", 4, "required"},
	{"unknown llm ref", "llms:\n  echo1: {provider: echo}\nagents:\n  a: {llm: echo2}\n", "agents.a.llm", 4, `did you mean "echo1"`},
	{"tool ref typo", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    tools: [clok]\ntools:\n  clock: {type: command, allowed_commands: [date]}\n", "agents.a.tools[0]", 6, `did you mean "clock"`},
	{"duplicate tool in agent", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    tools: [t, t]\ntools:\n  t: {type: command, allowed_commands: [date]}\n", "agents.a.tools[1]", 6, "listed twice"},
	{"missing provider", "llms:\n  e: {model: x}\nagents:\n  a: {llm: e}\n", "llms.e.provider", 2, "required"},
	{"bad provider", "llms:\n  e:\n    provider: opnai\nagents:\n  a: {llm: e}\n", "llms.e.provider", 3, `did you mean "openai"`},
	{"openai without model", "llms:\n  g:\n    provider: openai\n    api_key: k\nagents:\n  a: {llm: g}\n", "llms.g.model", 2, "required for provider openai"},
	{"anthropic without key", "llms:\n  c:\n    provider: anthropic\n    model: claude\nagents:\n  a: {llm: c}\n", "llms.c.api_key", 2, "required for provider anthropic"},
	{"unset env var", "llms:\n  g:\n    provider: openai\n    model: m\n    api_key: ${NOPE_KEY}\nagents:\n  a: {llm: g}\n", "llms.g.api_key", 5, "NOPE_KEY is not set"},
	{"bad env syntax", base + "name: ${1BAD}\n", "name", 5, "invalid environment variable name"},
	{"unterminated env", base + "name: ${OPEN\n", "name", 5, "unterminated"},
	{"temperature range", "llms:\n  e:\n    provider: echo\n    temperature: 3\nagents:\n  a: {llm: e}\n", "llms.e.temperature", 4, "between 0 and 2"},
	{"temperature type", "llms:\n  e:\n    provider: echo\n    temperature: hot\nagents:\n  a: {llm: e}\n", "llms.e.temperature", 4, "expected a number"},
	{"bad base_url", "llms:\n  e:\n    provider: openai\n    model: m\n    base_url: localhost:11434\nagents:\n  a: {llm: e}\n", "llms.e.base_url", 5, "http or https"},
	{"bad timeout", "llms:\n  e:\n    provider: echo\n    timeout: 30\nagents:\n  a: {llm: e}\n", "llms.e.timeout", 4, "invalid duration"},
	{"retries range", "llms:\n  e:\n    provider: echo\n    max_retries: 50\nagents:\n  a: {llm: e}\n", "llms.e.max_retries", 4, "between 0 and 10"},
	{"max_iterations type", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    max_iterations: many\n", "agents.a.max_iterations", 6, "expected an integer"},
	{"max_iterations range", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    max_iterations: -1\n", "agents.a.max_iterations", 6, "between 1 and 1000"},
	{"tools not a list", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    tools: clock\n", "agents.a.tools", 6, "expected a list"},
	{"agent not a mapping", "llms:\n  e: {provider: echo}\nagents:\n  a: hello\n", "agents.a", 4, "expected a mapping"},
	{"bad agent name", "llms:\n  e: {provider: echo}\nagents:\n  \"bad name\": {llm: e}\n", `agents["bad name"]`, 4, "invalid name"},
	{"tool without type", base + "tools:\n  t: {description: x}\n", "tools.t.type", 6, "required"},
	{"bad tool type", base + "tools:\n  t:\n    type: shell\n", "tools.t.type", 7, "must be one of command, http, agent"},
	{"agent tool without agent", base + "tools:\n  t:\n    type: agent\n", "tools.t.agent", 6, "required for tools of type agent"},
	{"agent tool unknown agent", base + "tools:\n  t:\n    type: agent\n    agent: b\n", "tools.t.agent", 8, `unknown agent "b"`},
	{"agent tool with url", base + "tools:\n  t:\n    type: agent\n    agent: a\n    url: http://x\n", "tools.t.url", 9, "not valid for tools of type agent"},
	{"agent field on http tool", base + "tools:\n  t: {type: http, url: \"http://x\", agent: a}\n", "tools.t.agent", 6, "only valid for tools of type agent"},
	{"delegate not allowed", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    tools: [ask]\n  b: {llm: e}\ntools:\n  ask: {type: agent, agent: b}\n", "agents.a.tools[0]", 6, `not in this agent's allowed_delegates`},
	{"unknown delegate", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    allowed_delegates: [zed]\n", "agents.a.allowed_delegates[0]", 6, `unknown agent "zed"`},
	{"self delegate", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    allowed_delegates: [a]\n", "agents.a.allowed_delegates[0]", 6, "itself"},
	{"a2a agent without url", "llms:\n  e: {provider: echo}\nagents:\n  r: {type: a2a}\n", "agents.r.url", 4, "required for agents of type a2a"},
	{"a2a agent bad url", "llms:\n  e: {provider: echo}\nagents:\n  r: {type: a2a, url: \"ftp://x\"}\n", "agents.r.url", 4, "http or https"},
	{"a2a agent with llm", "llms:\n  e: {provider: echo}\nagents:\n  r:\n    type: a2a\n    url: http://x\n    llm: e\n", "agents.r.llm", 7, "not valid for agents of type a2a"},
	{"local agent with url", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    url: http://x\n", "agents.a.url", 6, "only valid for agents of type a2a"},
	{"bad agent type", "llms:\n  e: {provider: echo}\nagents:\n  a:\n    type: remote\n    llm: e\n", "agents.a.type", 5, "must be one of local, a2a"},
	{"command without allowlist", base + "tools:\n  t:\n    type: command\n", "tools.t.allowed_commands", 6, "required"},
	{"command with url", base + "tools:\n  t:\n    type: command\n    allowed_commands: [ls]\n    url: http://x\n", "tools.t.url", 9, "only valid for tools of type http"},
	{"allowlist entry with space", base + "tools:\n  t:\n    type: command\n    allowed_commands: [\"rm -rf\"]\n", "tools.t.allowed_commands[0]", 8, "without spaces"},
	{"http without url", base + "tools:\n  t:\n    type: http\n", "tools.t.url", 6, "required for tools of type http"},
	{"http bad url", base + "tools:\n  t:\n    type: http\n    url: ftp://x/{id}\n", "tools.t.url", 8, "http or https"},
	{"http bad method", base + "tools:\n  t:\n    type: http\n    url: http://x\n    method: FETCH\n", "tools.t.method", 9, "must be one of"},
	{"http with shell", base + "tools:\n  t:\n    type: http\n    url: http://x\n    shell: true\n", "tools.t.shell", 9, "only valid for tools of type command"},
	{"shell not bool", base + "tools:\n  t:\n    type: command\n    allowed_commands: [ls]\n    shell: maybe\n", "tools.t.shell", 9, "expected true or false"},
	{"port range", base + "server:\n  port: 70000\n", "server.port", 6, "between 0 and 65535"},
	{"port type", base + "server:\n  port: eighty\n", "server.port", 6, "expected an integer"},
	{"bad host", base + "server:\n  host: \"http://x\"\n", "server.host", 6, "host name or IP"},
	{"shutdown timeout", base + "server:\n  shutdown_timeout: soon\n", "server.shutdown_timeout", 6, "invalid duration"},
	{"database scheme", base + "database:\n  url: mysql://u:secret@h/db\n", "database.url", 6, "mysql://REDACTED@h/db"},
	{"a2a public url", base + "a2a:\n  public_url: agents.example.com\n", "a2a.public_url", 6, "http or https base URL"},
	{"logger level", base + "logger:\n  level: verbose\n", "logger.level", 6, "must be one of debug, info, warn, error"},
	{"logger format", base + "logger:\n  format: jsn\n", "logger.format", 6, `did you mean "json"`},
	{"version", "version: 3\n" + base, "version", 1, "unsupported version"},
	{"duplicate agent", "llms:\n  e: {provider: echo}\nagents:\n  a: {llm: e}\n  a: {llm: e}\n", "agents.a", 5, `duplicate key "a"`},
	{"section is a list", base + "server: [1]\n", "server", 5, "expected a mapping"},
	{"scalar where list item map", base + "tools:\n  t:\n    type: command\n    allowed_commands: [{x: 1}]\n", "tools.t.allowed_commands[0]", 8, "expected a single value"},
}

func TestParseInvalid(t *testing.T) {
	cases := invalidCases
	if len(cases) < 30 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Parse([]byte(tc.src), env(nil))
			if len(errs) == 0 {
				t.Fatalf("expected an error at %s", tc.path)
			}
			for _, e := range errs {
				if e.Path == tc.path && e.Line == tc.line && strings.Contains(e.Message, tc.msgContain) {
					return
				}
			}
			t.Fatalf("no error at %s line %d containing %q; got:\n%v", tc.path, tc.line, tc.msgContain, errs)
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	src := "llms:\n  e:\n    provider: nope\nagents:\n  a:\n    llm: missing\n    colour: red\nserver:\n  port: -1\n"
	_, errs := Parse([]byte(src), env(nil))
	if len(errs) != 4 {
		t.Fatalf("want 4 errors, got %d:\n%v", len(errs), errs)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Fatalf("errors not in source order:\n%v", errs)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	e := env(map[string]string{"A": "1", "EMPTY": ""})
	for in, want := range map[string]string{
		"x${A}y":          "x1y",
		"${EMPTY:-d}":     "d",
		"${UNSET:-}":      "",
		"$${A}":           "${A}",
		"a $ b":           "a $ b",
		"${A}${A:-z}${A}": "111",
	} {
		got, err := expandEnv(in, e)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := expandEnv("${EMPTY}", e); err != nil {
		t.Errorf("set-but-empty variable without default must expand to empty: %v", err)
	}
}

func TestSchemaCoversEveryField(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "name", "llms", "agents", "tools", "server", "database", "logger"} {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("schema lacks %s", k)
		}
	}
	var agents struct {
		AdditionalProperties struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"additionalProperties"`
	}
	if err := json.Unmarshal(s.Properties["agents"], &agents); err != nil {
		t.Fatal(err)
	}
	if _, ok := agents.AdditionalProperties.Properties["max_iterations"]; !ok {
		t.Error("schema lacks agents.*.max_iterations")
	}
	if !strings.Contains(string(b), `"enum": [
              "openai",
              "anthropic",
              "echo"`) {
		t.Error("schema lacks the provider enum")
	}
}

// TestExamplesValid parses every shipped example so docs never show a broken config.
func TestExamplesValid(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	vars := map[string]string{"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k",
		"HECTOR_ADMIN_KEY": "admin-key-0123456789", "HECTOR_APP_KEY": "app-key-0123456789"}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, errs := Parse(b, env(vars)); errs != nil {
			t.Errorf("%s:\n%v", f, errs)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(base))
	f.Add([]byte(`{"agents": {"a": {"llm": "e"}}, "llms": {"e": {"provider": "echo"}}}`))
	f.Add([]byte("a: &x [*x]\n"))
	// server.auth's short forms: plain keys, one issuer without the list,
	// the seed's one-issuer shorthand.
	f.Add([]byte(base + "server: {auth: {api_keys: [aaaaaaaaaaaaaaaa, {name: b, key: bbbbbbbbbbbbbbbb, role: user}], jwt: {issuer: i, jwks_url: 'https://i/j'}}}\n"))
	f.Add([]byte(base + "server: {auth: {enabled: true, jwks_url: 'https://i/j', audience: h, api_keys: [{}]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, errs := Parse(data, env(map[string]string{"A": "1"}))
		if errs == nil && doc == nil {
			t.Fatal("no document and no errors")
		}
		if errs != nil && doc != nil {
			t.Fatal("document returned with errors")
		}
		for _, e := range errs {
			if e.Path == "" || e.Message == "" {
				t.Fatalf("error without path or message: %+v", e)
			}
		}
		if doc != nil {
			if doc.Config.Server.Port == nil || len(doc.Config.Agents) == 0 {
				t.Fatal("valid document without defaults")
			}
		}
	})
}
