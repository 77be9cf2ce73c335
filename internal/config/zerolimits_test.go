package config

import (
	"fmt"
	"strings"
	"testing"
)

// A limit written as 0 is an error naming the key and its default, where it
// used to mean the default silently; keys where 0 has a meaning keep it.
func TestZeroLimitsAreRejected(t *testing.T) {
	base := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\n"
	for _, c := range []struct{ doc, path, def string }{
		{"server: {max_body_bytes: 0}\n", "server.max_body_bytes", "1048576"},
		{"server: {shutdown_timeout: 0s}\n", "server.shutdown_timeout", "30s"},
		{"server: {read_timeout: 0s}\n", "server.read_timeout", "30s"},
		{"server: {idle_timeout: 0s}\n", "server.idle_timeout", "2m0s"},
		{"queue: {workers: 0}\n", "queue.workers", "4"},
		{"queue: {initial_delay: 0s}\n", "queue.initial_delay", "1s"},
		{"queue: {max_delay: 0s}\n", "queue.max_delay", "5m0s"},
		{"queue: {stale_threshold: 0s}\n", "queue.stale_threshold", "5m0s"},
		{"llms: {z: {provider: echo, timeout: 0s}}\n", "llms.z.timeout", "2m0s"},
		{"llms: {z: {provider: echo, max_tokens: 0}}\n", "llms.z.max_tokens", "(4096 for anthropic"},
		{"agents: {b: {llm: e, max_iterations: 0}}\n", "agents.b.max_iterations", "10"},
		{"tools: {t: {type: command, allowed_commands: [date], timeout: 0s}}\n", "tools.t.timeout", "30s"},
		{"tools: {t: {type: agent, agent: a, timeout: 0s}}\n", "tools.t.timeout", "5m0s"},
		{"tools: {t: {type: command, allowed_commands: [date], max_output_bytes: 0}}\n", "tools.t.max_output_bytes", "65536"},
	} {
		t.Run(c.path, func(t *testing.T) {
			doc := c.doc + base
			if strings.HasPrefix(c.doc, "llms:") || strings.HasPrefix(c.doc, "agents:") {
				// Merge into the base's section instead of repeating the key.
				section := strings.SplitN(c.doc, ":", 2)[0]
				entity := strings.TrimSuffix(strings.TrimPrefix(c.doc, section+": {"), "}\n")
				doc = strings.Replace(base, section+": {", section+": {"+entity+", ", 1)
			}
			_, errs := Parse([]byte(doc), env(nil))
			var found *Error
			for i := range errs {
				if errs[i].Path == c.path {
					found = &errs[i]
				}
			}
			if found == nil || found.Line == 0 || !strings.Contains(found.Message, "must be > 0; omit it for the default "+c.def) {
				t.Fatalf("%s written as 0:\n%s\nerrors: %v", c.path, doc, errs)
			}
		})
	}
	// Absent keys take their defaults; these keys mean something at 0.
	ok := base + "server: {port: 0, rebind_grace: 0s, max_connections_per_client: 0}\n" +
		"queue: {retention: 0s, max_retries: 0}\n"
	if _, errs := Parse([]byte(ok), env(nil)); errs != nil {
		t.Fatalf("zeros that mean something: %v", errs)
	}
}

// A one-entity edit (the incremental parser's patch path) is checked too.
func TestZeroLimitInAPatchedEntity(t *testing.T) {
	var p Parser
	agents := func(n string) string {
		var b strings.Builder
		b.WriteString("llms: {e: {provider: echo}}\nagents:\n")
		for i := range 20 {
			fmt.Fprintf(&b, "  a%d:\n    llm: e\n    max_iterations: %s\n", i, map[bool]string{true: n, false: "5"}[i == 7])
		}
		return b.String()
	}
	if _, errs := p.Parse([]byte(agents("5")), env(nil), nil); errs != nil {
		t.Fatal(errs)
	}
	_, errs := p.Parse([]byte(agents("0")), env(nil), nil)
	if len(errs) != 1 || errs[0].Path != "agents.a7.max_iterations" || !strings.Contains(errs[0].Message, "omit it for the default 10") {
		t.Fatalf("patched max_iterations: 0: %v", errs)
	}
}
