package config

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestMerge(t *testing.T) {
	base := `# base
llms:
  e: {provider: echo}
agents:
  a:
    llm: e
    instruction: base
    tools: [clock, fetch]
  b: {llm: e, instruction: b}
defaults: &d {x: 1}
other: *d
`
	override := `{"agents": {"a": {"instruction": "prod", "tools": ["clock"]}, "c": {"llm": "e"}}, "server": {"port": 9000}}`
	got, err := Merge([]Layer{{"file:base.yaml", []byte(base)}, {"etcd:/p", nil}, {"etcd:/o", []byte(override)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(got, &doc); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	want := map[string]string{
		"agents.a.instruction": "prod", "agents.a.llm": "e", "agents.b.instruction": "b",
		"agents.a.tools": "[clock]", "agents.c.llm": "e", "server.port": "9000", "other.x": "1",
	}
	for path, v := range want {
		if g := lookup(doc, path); g != v {
			t.Errorf("%s = %q, want %q\n%s", path, g, v, got)
		}
	}
	if strings.Contains(string(got), "&") || strings.Contains(string(got), "*d") {
		t.Errorf("anchors survived the merge:\n%s", got)
	}
	// Keys keep the order they first appeared in.
	if i, j := strings.Index(string(got), "llms:"), strings.Index(string(got), "server:"); i < 0 || j < i {
		t.Errorf("order:\n%s", got)
	}

	annotated, err := Merge([]Layer{{"file:base.yaml", []byte(base)}, {"etcd:/o", []byte(override)}}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"instruction: prod # from etcd:/o", "llm: e # from file:base.yaml", "tools: [clock] # from etcd:/o",
		"port: 9000 # from etcd:/o"} {
		if !strings.Contains(string(annotated), line) {
			t.Errorf("no %q in\n%s", line, annotated)
		}
	}

	if _, err := Merge([]Layer{{"file:base.yaml", []byte(base)}, {"consul:bad", []byte("- a\n- b\n")}}, false); err == nil ||
		!strings.Contains(err.Error(), "consul:bad") || !strings.Contains(err.Error(), "a list") {
		t.Fatalf("list layer: %v", err)
	}
	if _, err := Merge([]Layer{{"zookeeper:/x", []byte("a: [")}}, false); err == nil || !strings.HasPrefix(err.Error(), "zookeeper:/x: ") {
		t.Fatalf("broken layer: %v", err)
	}
}

// lookup returns the scalar (or flow list) at a dotted path of a raw map.
func lookup(doc map[string]any, path string) string {
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case []any:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprint(x)
		}
		return "[" + strings.Join(s, " ") + "]"
	default:
		return fmt.Sprint(v)
	}
}
