package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A small document of anchors can expand into a million errors; what is
// reported stays bounded: MaxErrors errors plus one "and N more", each
// message and path bounded.
func TestErrorsPerDocumentAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("llms: {e: {provider: echo}}\ntools: {t: {type: command, allowed_commands: &bad [")
	for i := 0; i < 100; i++ {
		b.WriteString("[],")
	}
	b.WriteString("]}}\nagents:\n")
	for i := 0; i < 500; i++ { // 100 errors each: 50,000 in 15 KB
		fmt.Fprintf(&b, "  a%d: {llm: e, tools: *bad}\n", i)
	}
	fmt.Fprintf(&b, "  long: {llm: %s}\n", strings.Repeat("k", 100000))
	_, errs := Parse([]byte(b.String()), env(nil))
	if len(errs) == 0 || len(errs) > MaxErrors+1 {
		t.Fatalf("%d errors", len(errs))
	}
	last := errs[len(errs)-1]
	if !strings.Contains(last.Message, "more (only the first 100") {
		t.Fatalf("last error: %+v", last)
	}
	out, _ := json.Marshal(errs)
	if len(out) > 200<<10 {
		t.Fatalf("errors are %d bytes as JSON", len(out))
	}
	for _, e := range errs {
		if len(e.Message) > 1100 || len(e.Path) > 400 {
			t.Fatalf("an unbounded error: path %d bytes, message %d bytes", len(e.Path), len(e.Message))
		}
	}
}
