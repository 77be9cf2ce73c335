package config

import (
	"sort"
	"strings"
)

// Messages never quote environment values. A document sent to the API can
// reference any variable of the server's environment (${OPENAI_API_KEY}),
// and a message such as `must be one of …, got "sk-…"` would hand the value
// back. Each value of a variable the document references is shown as the
// reference instead. Values shorter than minScrubbed are left alone: they
// are not secrets, and replacing them would mangle unrelated text.
//
// The rule depends only on the document and the environment, so Parse and
// Parser (which reuses parses of unchanged entities) say the same; and it
// costs nothing for a document without errors or warnings.
const minScrubbed = 4

// scrubEnv replaces, in the messages of errs and of doc's warnings, the
// value of every variable data references with ${NAME}, longest first.
func scrubEnv(data []byte, env LookupEnv, doc *Document, errs Errors) (*Document, Errors) {
	if len(errs) == 0 && (doc == nil || len(doc.Warnings) == 0) {
		return doc, errs
	}
	type pair struct{ value, name string }
	var vals []pair
	seen := map[string]bool{}
	for _, m := range envRef.FindAllSubmatch(data, -1) {
		name := string(m[1])
		if seen[name] {
			continue
		}
		seen[name] = true
		if v, ok := env(name); ok && len(v) >= minScrubbed {
			vals = append(vals, pair{v, name})
		}
	}
	if len(vals) == 0 {
		return doc, errs
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i].value) > len(vals[j].value) })
	scrub := func(es Errors) {
		for i := range es {
			for _, p := range vals {
				es[i].Message = strings.ReplaceAll(es[i].Message, p.value, "${"+p.name+"}")
			}
		}
	}
	scrub(errs)
	if doc != nil {
		scrub(doc.Warnings)
	}
	return doc, errs
}
