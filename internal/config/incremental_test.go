package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var testEnv = env(map[string]string{"A": "1", "OPENAI_API_KEY": "k"})

// fullPositions returns every position Parse records for data.
func fullPositions(data []byte) Positions {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	d := &decoder{pos: Positions{}, env: testEnv}
	d.decode(&root, reflectValue(&Config{}), "")
	return d.pos
}

// sameAsParse fails unless p.Parse(data) is exactly what Parse(data) gives:
// the config, the errors, every position and the redacted text.
func sameAsParse(t testing.TB, p *Parser, data []byte) {
	t.Helper()
	full, ferrs := Parse(data, testEnv)
	inc, ierrs := p.Parse(data, testEnv, nil)
	if !reflect.DeepEqual(ferrs, ierrs) {
		t.Fatalf("errors differ for:\n%s\nParse:\n%v\nParser:\n%v", data, ferrs, ierrs)
	}
	if ferrs != nil {
		return
	}
	if !reflect.DeepEqual(full.Config, inc.Config) || full.Hash != inc.Hash || full.Format != inc.Format || !reflect.DeepEqual(full.Warnings, inc.Warnings) {
		t.Fatalf("documents differ for:\n%s\nParse:  %+v\nParser: %+v", data, full.Config, inc.Config)
	}
	for path, want := range fullPositions(data) {
		if got, ok := inc.Pos(path); !ok || got != want {
			t.Fatalf("position of %s: Parser %v %v, Parse %v\n%s", path, got, ok, want, data)
		}
	}
	r1, e1 := Redact(data)
	r2, e2 := p.Redact(data)
	if string(r1) != string(r2) || (e1 == nil) != (e2 == nil) {
		t.Fatalf("redaction differs:\n%s\n---\n%s", r1, r2)
	}
}

// samePatchPlan fails unless, when a Parser patches second from first,
// DiffOne gives exactly Diff's plan.
func samePatchPlan(t testing.TB, alone int, first, second []byte) {
	t.Helper()
	q := &Parser{alone: alone}
	prev, errs := q.Parse(first, testEnv, nil)
	if errs != nil {
		return
	}
	next, errs := q.Parse(second, testEnv, nil)
	if errs != nil {
		return
	}
	base, section, entity, ok := next.Patched()
	if !ok {
		return
	}
	if base != prev.Hash {
		t.Fatalf("patched from %s, want %s", base, prev.Hash)
	}
	if got, want := DiffOne(prev.Config, next.Config, section, entity), Diff(prev.Config, next.Config); !reflect.DeepEqual(got, want) {
		t.Fatalf("DiffOne %v, Diff %v for\n%s", got, want, second)
	}
}

func bigDoc(n int, edit func(i int) string) string {
	var b strings.Builder
	b.WriteString("# generated\nversion: 1\nllms:\n")
	for i := 0; i < n/5+1; i++ {
		fmt.Fprintf(&b, "  l%d: {provider: openai, model: m, api_key: sk-secret-%d, base_url: \"http://h:9/v1\"}\n", i, i)
	}
	b.WriteString("agents:\n  # the agents\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  a%d:\n    llm: l%d\n    instruction: \"agent %d\"\n%s", i, i/5, i, edit(i))
	}
	b.WriteString("tools:\n  t: {type: http, url: \"http://h/{q}\", headers: {Authorization: Bearer x-secret}}\nserver: {port: 0}\n")
	return b.String()
}

func TestParserMatchesParse(t *testing.T) {
	for _, alone := range []int{0, -1} { // parse changed chunks alone; derive them from one parse
		t.Run(fmt.Sprintf("alone=%d", alone), func(t *testing.T) { parserMatchesParse(t, &Parser{alone: alone}) })
	}
}

func parserMatchesParse(t *testing.T, p *Parser) {
	docs := []string{valid, base, `{"agents": {"a": {"llm": "e"}}, "llms": {"e": {"provider": "echo"}}}`, secretDoc}
	if b, err := os.ReadFile("../../examples/quickstart.yaml"); err == nil {
		docs = append(docs, string(b))
	}
	for _, c := range invalidCases {
		docs = append(docs, c.src)
	}
	none := func(int) string { return "" }
	docs = append(docs,
		bigDoc(50, none),
		bigDoc(50, func(i int) string { return map[bool]string{true: "    description: changed\n"}[i == 7] }),
		bigDoc(50, func(i int) string { return map[bool]string{true: "    max_iterations: lots\n"}[i == 9] }),
		bigDoc(50, func(i int) string { return map[bool]string{true: "    tools: [nope]\n"}[i == 3] }),
		bigDoc(50, func(i int) string { return map[bool]string{true: "  # a comment between agents\n\n"}[i == 4] }),
		strings.Replace(bigDoc(50, none), "  a7:\n", "  a7:\n    colour: red\n", 1),
		strings.Replace(bigDoc(50, none), "  a7:\n", "  a6:\n", 1), // duplicate entity: falls back
		strings.Replace(bigDoc(50, none), "  a7:\n", "  a7: {llm: l0,\n  x: 1}\n", 1),
		strings.Replace(bigDoc(50, none), "server: {port: 0}", "server:\n  port: 0\n  auth: {api_keys: [{key: admin-key-0123456789, role: admin}]}", 1),
		strings.Replace(bigDoc(50, none), "version: 1", "verison: 1", 1),
		strings.Replace(bigDoc(50, none), "  a7:\n", "  \"a 7\":\n", 1),
		strings.Replace(bigDoc(50, none), "  a7:\n", "  a7.x:\n", 1),
		strings.Replace(bigDoc(50, none), "instruction: \"agent 7\"", "instruction: ${UNSET_VAR}", 1),
		bigDoc(50, none)+"agents: {}\n",
	)
	for i, d := range docs {
		for round := 0; round < 2; round++ { // cold, then warm cache
			t.Run(fmt.Sprintf("doc%d/round%d", i, round), func(t *testing.T) { sameAsParse(t, p, []byte(d)) })
		}
	}
}

func TestParserReusesUnchangedChunks(t *testing.T) {
	var p Parser
	none := func(int) string { return "" }
	if _, errs := p.Parse([]byte(bigDoc(1000, none)), testEnv, nil); errs != nil { // over the limit: derived
		t.Fatal(errs)
	}
	before := len(p.cache)
	one := bigDoc(1000, func(i int) string { return map[bool]string{true: "    description: x\n"}[i == 50] })
	if _, errs := p.Parse([]byte(one), testEnv, nil); errs != nil {
		t.Fatal(errs)
	}
	if p.last == nil {
		t.Fatal("the document was not split")
	}
	if added := len(p.cache) - before; added != 1 {
		t.Fatalf("one changed agent parsed %d new chunks", added)
	}
}

func FuzzParserMatchesParse(f *testing.F) {
	none := func(int) string { return "" }
	f.Add([]byte(bigDoc(5, none)), []byte(bigDoc(5, func(i int) string { return map[bool]string{true: "    description: d\n"}[i == 2] })))
	f.Add([]byte(valid), []byte(base))
	f.Add([]byte(base), []byte(strings.Replace(base, "a: {llm: e}", "a: {llm: x}", 1)))
	f.Add([]byte(secretDoc), []byte(secretDoc+"name: x\n"))
	f.Add([]byte(bigDoc(5, none)), []byte(strings.Replace(bigDoc(5, none), `"agent 3"`, `"agent three"`, 1))) // patched
	// The original Hector's spellings, whole and patched: the cross-section
	// normalisations must hold for a patch too.
	legacy := "version: \"2\"\nllms:\n  o:\n    type: echo\nagents:\n  a:\n    llm: o\n    name: A\n    tools: [search]\n  b:\n    type: native\n    llm: o\n" +
		"databases:\n  main: {driver: sqlite, database: x.db}\nserver:\n  tasks: {backend: sql, database: main}\n  observability: {metrics: {enabled: false}}\n"
	f.Add([]byte(legacy), []byte(strings.Replace(legacy, "name: A", "name: B", 1)))
	f.Add([]byte(legacy), []byte(strings.Replace(legacy, "    type: native\n", "    type: llm\n", 1)))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		for _, alone := range []int{0, -1} {
			p := &Parser{alone: alone}
			p.Parse(first, testEnv, nil)
			sameAsParse(t, p, second)
			samePatchPlan(t, alone, first, second)
			sameAsParse(t, p, first)
		}
	})
}

// Edits inside one entity that keep its name and line count are patched;
// every other edit is split in full. Either way the result is Parse's.
func TestParserPatch(t *testing.T) {
	none := func(int) string { return "" }
	base := bigDoc(20, none)
	cases := []struct {
		name    string
		edit    func(string) string
		patched string // "section/entity", or "" when the edit must not be patched
	}{
		{"instruction", func(s string) string { return strings.Replace(s, `"agent 7"`, `"agent seven"`, 1) }, "agents/a7"},
		{"llm model", func(s string) string {
			return strings.Replace(s, "l2: {provider: openai, model: m,", "l2: {provider: openai, model: m2,", 1)
		}, "llms/l2"},
		{"first entity", func(s string) string { return strings.Replace(s, `"agent 0"`, `"agent zero"`, 1) }, "agents/a0"},
		{"last entity", func(s string) string { return strings.Replace(s, "Bearer x-secret", "Bearer y-secret", 1) }, "tools/t"},
		{"invalid reference", func(s string) string { return strings.Replace(s, "llm: l1\n", "llm: zz\n", 1) }, ""}, // patched, but an invalid document has no Document
		{"a line added", func(s string) string {
			return strings.Replace(s, `"agent 3"`+"\n", `"agent 3"`+"\n    description: d\n", 1)
		}, ""},
		{"renamed", func(s string) string { return strings.Replace(s, "  a4:\n", "  b4:\n", 1) }, ""},
		{"two entities", func(s string) string {
			return strings.Replace(strings.Replace(s, `"agent 8"`, `"agent 8x"`, 1), `"agent 9"`, `"agent 9x"`, 1)
		}, ""},
		{"broken yaml", func(s string) string { return strings.Replace(s, `"agent 6"`, `"agent 6`, 1) }, ""},
		{"an anchor", func(s string) string { return strings.Replace(s, `"agent 2"`, `&x "agent 2"`, 1) }, ""},
		{"dedented", func(s string) string {
			return strings.Replace(s, "    instruction: \"agent 1\"", "instruction: \"agent 1\"    ", 1)
		}, ""},
		{"section header", func(s string) string { return strings.Replace(s, "server: {port: 0}", "server: {port: 1}", 1) }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := c.edit(base)
			if next == base {
				t.Fatal("the edit changed nothing")
			}
			p := &Parser{}
			prev, errs := p.Parse([]byte(base), testEnv, nil)
			if errs != nil {
				t.Fatal(errs)
			}
			sameAsParse(t, p, []byte(next))
			q := &Parser{}
			q.Parse([]byte(base), testEnv, nil)
			d, _ := q.Parse([]byte(next), testEnv, nil)
			got := ""
			if d != nil {
				if b, sec, ent, ok := d.Patched(); ok {
					got = sec + "/" + ent
					if b != prev.Hash {
						t.Fatalf("base %s, want %s", b, prev.Hash)
					}
				}
			}
			if got != c.patched {
				t.Fatalf("patched %q, want %q", got, c.patched)
			}
			samePatchPlan(t, 0, []byte(base), []byte(next))
			sameAsParse(t, p, []byte(base)) // and back
		})
	}
}
