package config

import (
	"reflect"
	"testing"
)

// Every section of the document is planned: an edit that changes only one
// of them is reported with that section's changed keys.
func TestDiffCoversEverySection(t *testing.T) {
	base := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\n"
	for _, c := range []struct{ add, kind, key string }{
		{"a2a: {public_url: \"https://agents.example.com\"}\n", "a2a", "public_url"},
		{"a2a: {push: {allow_private_networks: true}}\n", "a2a", "push"},
		{"queue: {workers: 2}\n", "queue", "workers"},
		{"observability: {metrics: {enabled: false}}\n", "observability", "metrics"},
		{"server: {read_timeout: 5s}\n", "server", "read_timeout"},
		{"logger: {level: debug}\n", "logger", "level"},
	} {
		old, errs := Parse([]byte(base), env(nil))
		if errs != nil {
			t.Fatal(errs)
		}
		next, errs := Parse([]byte(base+c.add), env(nil))
		if errs != nil {
			t.Fatal(errs)
		}
		want := Plan{c.kind: {Changed: []string{c.key}}}
		if got := Diff(old.Config, next.Config); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: plan %+v, want %+v", c.add, got, want)
		}
	}
	// The test above lists sections by hand: a new section of Config must
	// be planned too.
	sections := map[string]bool{"llms": true, "agents": true, "tools": true, "server": true, "database": true, "logger": true, "queue": true, "a2a": true, "observability": true, "name": true, "version": true}
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		// An old spelling is empty once normalised, and config (a
		// pointer) never reaches a valid configuration.
		if key := ct.Field(i).Tag.Get("yaml"); !sections[key] && ct.Field(i).Tag.Get("legacy") == "" && key != "config" {
			t.Errorf("section %q is new: add it to Diff and to this list", key)
		}
	}
}
