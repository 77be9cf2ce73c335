package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// keyPaths lists every configuration key as documented: "server.port",
// "llms.<name>.model".
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "-" {
			continue
		}
		p := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && f.Tag.Get("legacy") == "" {
			ft = ft.Elem() // an optional section (config): its keys are rows
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			out = append(out, keyPaths(ft, p+".")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), p+".<name>.")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), p+"[].")...)
		default:
			out = append(out, p)
		}
	}
	return out
}

// TestConfigurationDocCoversEveryKey keeps docs/configuration.md and the
// schema types in step, both ways.
func TestConfigurationDocCoversEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_.<>\\[\\]]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = true
	}
	schema := map[string]bool{}
	for _, k := range keyPaths(reflect.TypeOf(Config{}), "") {
		schema[k] = true
		if !documented[k] {
			t.Errorf("key %s is not documented in docs/configuration.md", k)
		}
	}
	section := func(k string) bool { // a row about a list or mapping of keys
		for s := range schema {
			if strings.HasPrefix(s, k+"[") || strings.HasPrefix(s, k+".") {
				return true
			}
		}
		return false
	}
	var extra []string
	for k := range documented {
		if !schema[k] && !section(k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("docs/configuration.md documents keys that do not exist: %v", extra)
	}
}
