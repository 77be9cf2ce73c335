package config

import (
	"strings"
	"testing"
)

// Each of the original Hector's spellings is read as its canonical form,
// with one warning at the line the user wrote, naming what it became.
func TestNormalisations(t *testing.T) {
	const llm = "llms: {e: {provider: echo}}\n"
	for _, c := range []struct {
		name, doc string
		check     func(*Config) bool
		path      string
		line      int
		says      string
	}{
		{"version 1.0", "version: \"1.0\"\n" + minimal, func(c *Config) bool { return c.Version == "1" },
			"version", 1, `read as "1"`},
		{"version 2", "version: \"2\"\n" + minimal, func(c *Config) bool { return c.Version == "1" },
			"version", 1, "v2 schema"},
		{"llm type", "llms:\n  e:\n    type: echo\nagents: {a: {llm: e}}\n", func(c *Config) bool { return c.LLMs["e"].Provider == "echo" && c.LLMs["e"].Type == "" },
			"llms.e.type", 3, "read as llms.e.provider"},
		{"agent name", llm + "agents:\n  a:\n    llm: e\n    name: Production Assistant\n", func(c *Config) bool { return c.Agents["a"].DisplayName == "Production Assistant" },
			"agents.a.name", 5, "read as agents.a.display_name"},
		{"agent native", llm + "agents:\n  a:\n    llm: e\n    type: native\n", func(c *Config) bool { return c.Agents["a"].Type == "local" },
			"agents.a.type", 5, `"native" is the original Hector's name: read as "local"`},
		{"agent llm type", llm + "agents:\n  a:\n    type: llm\n    llm: e\n", func(c *Config) bool { return c.Agents["a"].Type == "local" },
			"agents.a.type", 4, `read as "local"`},
		{"working_directory", minimal + "tools:\n  t:\n    type: command\n    command: ./deploy.sh\n    working_directory: /srv\n",
			func(c *Config) bool { return c.Tools["t"].WorkingDir == "/srv" }, "tools.t.working_directory", 7, "read as tools.t.working_dir"},
		{"auth enabled", minimal + "server:\n  auth:\n    enabled: true\n    api_keys: [{name: k, key: aaaaaaaaaaaaaaaa, role: admin}]\n",
			func(c *Config) bool { return c.Server.Auth.Required() && c.Server.Auth.Enabled == nil }, "server.auth.enabled", 5, "read as server.auth.require"},
		{"server.observability", minimal + "server:\n  observability:\n    metrics: {enabled: false}\n",
			func(c *Config) bool { return !c.Observability.Metrics.On() && c.Server.Observability == nil }, "server.observability", 4, "read as observability"},
		{"databases with server.tasks", minimal + "databases:\n  main: {driver: postgres, host: db, port: 5433, database: hector, user: hector, password: 's3cr/t@'}\n" +
			"server:\n  tasks: {backend: sql, database: main}\n  sessions: {backend: sql, database: main}\n",
			func(c *Config) bool {
				return c.Database.URL == "postgres://hector:s3cr%2Ft%40@db:5433/hector" && c.Databases == nil
			},
			"databases.main", 4, "read as database.url postgres://REDACTED@db:5433/hector (named by server.tasks.database)"},
		{"databases with storage", minimal + "databases:\n  local: {driver: sqlite, database: /var/lib/hector.db}\nstorage:\n  tasks: {backend: sql, database: local}\n",
			func(c *Config) bool { return c.Database.URL == "sqlite:///var/lib/hector.db" }, "databases.local", 4, "read as database.url sqlite:///var/lib/hector.db"},
		{"one database", minimal + "databases:\n  main: {driver: postgres, database: h, ssl_mode: require}\n",
			func(c *Config) bool { return c.Database.URL == "postgres://localhost:5432/h?sslmode=require" }, "databases.main", 4, "(named by databases.main)"},
		{"in-memory store", minimal + "storage:\n  sessions: {backend: inmemory}\n",
			func(c *Config) bool { return c.Database.URL == "" }, "storage.sessions.backend", 4, "keeps tasks and sessions in its database"},
		{"built-in tool", llm + "agents:\n  a:\n    llm: e\n    tools: [search]\n", func(c *Config) bool { return len(c.Agents["a"].Tools) == 0 },
			"agents.a.tools[0]", 5, "search is a built-in tool of the original Hector"},
		{"env default", "llms: {e: {provider: '${HECTOR_TEST_UNSET:echo}'}}\nagents: {a: {llm: e}}\n", func(c *Config) bool { return c.LLMs["e"].Provider == "echo" },
			"llms.e.provider", 1, "the original Hector's spelling of ${NAME:-default}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, parse := range parsers() {
				doc, errs := parse([]byte(c.doc))
				if errs != nil {
					t.Fatalf("%v\n%s", errs, c.doc)
				}
				if !c.check(doc.Config) {
					t.Errorf("not normalised: %+v", doc.Config)
				}
				if c.path == "" {
					if doc.Warnings != nil {
						t.Errorf("warnings: %v", doc.Warnings)
					}
					continue
				}
				if len(doc.Warnings) != 1 {
					t.Fatalf("want one warning, got %v", doc.Warnings)
				}
				w := doc.Warnings[0]
				if w.Path != c.path || w.Line != c.line || !strings.Contains(w.Message, c.says) {
					t.Errorf("warning %q, want %s at line %d saying %q", w.Warning(), c.path, c.line, c.says)
				}
			}
		})
	}
}

// A value through the original Hector's ${NAME:default} is scrubbed from
// messages like any other variable's.
func TestEnvDefaultSpellingIsScrubbed(t *testing.T) {
	e := env(map[string]string{"SECRET_TOKEN": "sk-live-abcdef123"})
	doc := []byte("version: ${SECRET_TOKEN:1}\n" + minimal)
	for _, parse := range []func() (*Document, Errors){func() (*Document, Errors) { return Parse(doc, e) },
		func() (*Document, Errors) { return new(Parser).Parse(doc, e, nil) }} {
		_, errs := parse()
		if errs == nil || strings.Contains(errs.Error(), "sk-live") || !strings.Contains(errs.Error(), "${SECRET_TOKEN}") {
			t.Fatalf("%v", errs)
		}
	}
}

// parsers are Parse and a Parser's parse of the document (split into
// chunks), which must agree.
func parsers() []func([]byte) (*Document, Errors) {
	return []func([]byte) (*Document, Errors){
		func(b []byte) (*Document, Errors) { return Parse(b, env(nil)) },
		func(b []byte) (*Document, Errors) { return new(Parser).Parse(b, env(nil), nil) },
	}
}

// Two spellings of one setting that disagree are an error at the old one;
// errors about a normalised field point at the line the user wrote.
func TestNormalisationErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"llms:\n  e:\n    type: openai\n    provider: echo\nagents: {a: {llm: e}}\n":                                                            "3:5: llms.e.type: is \"openai\" but provider is \"echo\"",
		"llms:\n  e:\n    type: gemini\nagents: {a: {llm: e}}\n":                                                                                "3:5: llms.e.provider: must be one of openai, anthropic, echo, got \"gemini\"",
		"llms:\n  e:\n    type: openai\nagents: {a: {llm: e}}\n":                                                                                "2:3: llms.e.model: required for provider openai",
		minimal + "server: {auth: {enabled: true, require: false, api_keys: [aaaaaaaaaaaaaaaa]}}\n":                                             "server.auth.enabled: is true but require is false",
		minimal + "databases:\n  a: {driver: postgres}\n  b: {driver: postgres}\nstorage:\n  tasks: {database: a}\n  sessions: {database: b}\n": "8:14: storage.sessions.database: names database \"b\" but storage.tasks.database names \"a\"",
		minimal + "databases:\n  a: {driver: postgres}\n  b: {driver: postgres}\n":                                                              "3:1: databases: 2 databases but nothing names one",
		minimal + "databases:\n  a: {driver: mysql}\n":                                                                                          "4:7: databases.a.driver: unsupported driver \"mysql\"",
		minimal + "server:\n  tasks: {backend: sql, database: main}\n":                                                                          "4:25: server.tasks.database: unknown database \"main\": databases is empty",
		minimal + "database: {url: 'sqlite://x.db'}\ndatabases:\n  a: {driver: sqlite, database: y.db}\n":                                       "5:3: databases.a: database.url is also set",
		minimal + "observability: {metrics: {enabled: true}}\nserver: {observability: {metrics: {enabled: false}}}\n":                           "server.observability: observability is also set",
		minimal + "server: {observability: {tracing: {sampling_rate: 7}}}\n":                                                                    "3:36: observability.tracing.sampling_rate:",
		minimal + "config: {provider: etcd, key: /hector/production}\n":                                                                         "3:1: config: names the backend",
	} {
		for _, parse := range parsers() {
			_, errs := parse([]byte(doc))
			if errs == nil || !strings.Contains(errs.Error(), want) {
				t.Errorf("%s\n got %v\nwant %s", doc, errs, want)
			}
		}
	}
}
