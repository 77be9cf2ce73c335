package config

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Schema returns a JSON Schema (draft 2020-12) for the configuration
// document, generated from the schema types so it cannot drift from them.
// Editors use it for completion and inline errors.
func Schema() ([]byte, error) {
	s := schemaFor(reflect.TypeOf(Config{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://hector.run/schema/config-v1.json"
	s["title"] = "Hector configuration"
	return json.MarshalIndent(s, "", "  ")
}

func schemaFor(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
	}
	if t == approvalType {
		return map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			p := schemaFor(f.Type)
			if doc := f.Tag.Get("doc"); doc != "" {
				p["description"] = doc
			}
			if enum := f.Tag.Get("enum"); enum != "" {
				p["enum"] = strings.Split(enum, ",")
			}
			if f.Tag.Get("secret") != "" {
				p["writeOnly"] = true
			}
			if f.Tag.Get("legacy") != "" { // an old spelling, read as its canonical key
				p["deprecated"] = true
			}
			props[name] = p
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Map:
		m := map[string]any{"type": "object", "additionalProperties": schemaFor(t.Elem())}
		if t.Elem().Kind() == reflect.Struct { // named entities: llms, agents, tools
			m["propertyNames"] = map[string]any{"pattern": entityNamePattern}
		}
		return m
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaFor(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}
