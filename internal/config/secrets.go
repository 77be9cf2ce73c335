package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted replaces a secret wherever configuration is shown or stored.
const Redacted = "REDACTED"

var envRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`)

// isReference reports whether s consists only of ${VAR} references, which
// name a secret without containing it.
func isReference(s string) bool {
	return s != "" && strings.TrimSpace(envRef.ReplaceAllString(s, "")) == ""
}

// secretVisit is called for each secret scalar in a document.
type secretVisit func(path string, n *yaml.Node, kind string)

// walkSecrets visits the secret scalars of a document: fields tagged
// `secret:"true"` (whole value), `secret:"values"` (each map value) and
// `secret:"password"` (the password of a URL).
func walkSecrets(n *yaml.Node, t reflect.Type, path string, visit secretVisit) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			walkSecrets(n.Content[0], t, path, visit)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		return // an alias shares its anchor's node, visited there
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == durationType {
			return
		}
		idx, _ := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			fi, ok := idx[n.Content[i].Value]
			if !ok {
				continue
			}
			f, val := t.Field(fi), n.Content[i+1]
			p := childPath(path, n.Content[i].Value)
			switch f.Tag.Get("secret") {
			case "true", "password":
				if val.Kind == yaml.ScalarNode {
					visit(p, val, f.Tag.Get("secret"))
				}
			case "values":
				if val.Kind == yaml.MappingNode {
					for j := 0; j+1 < len(val.Content); j += 2 {
						if v := val.Content[j+1]; v.Kind == yaml.ScalarNode {
							visit(childPath(p, val.Content[j].Value), v, "true")
						}
					}
				}
			default:
				walkSecrets(val, f.Type, p, visit)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				walkSecrets(n.Content[i+1], t.Elem(), childPath(path, n.Content[i].Value), visit)
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				walkSecrets(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), visit)
			}
		}
	}
}

// splitPassword returns the parts of a URL around its password, or ok=false
// when it has none.
func splitPassword(u string) (before, password, after string, ok bool) {
	scheme := strings.Index(u, "://")
	if scheme < 0 {
		return "", "", "", false
	}
	rest := u[scheme+3:]
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return "", "", "", false
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return "", "", "", false
	}
	p := scheme + 3
	return u[:p+colon+1], rest[colon+1 : at], u[p+at:], true
}

// redactValue returns the shown form of a secret scalar.
func redactValue(v, kind string) string {
	if kind == "password" {
		before, pw, after, ok := splitPassword(v)
		if !ok || isReference(pw) || pw == Redacted {
			return v
		}
		return before + Redacted + after
	}
	if isReference(v) || v == "" {
		return v
	}
	return Redacted
}

// Redact returns the document with every literal secret replaced by
// REDACTED. ${VAR} references are kept: they name a secret without holding
// it. Comments and layout of YAML are kept; JSON is re-indented.
func Redact(data []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(err)
	}
	changed := false
	walkSecrets(&root, reflect.TypeOf(Config{}), "", func(_ string, n *yaml.Node, kind string) {
		if r := redactValue(n.Value, kind); r != n.Value {
			n.Value, n.Style, changed = r, 0, true
		}
	})
	if !changed {
		return data, nil
	}
	return encode(&root, DetectFormat(data))
}

// Unredact restores the REDACTED secrets of data from current, the document
// now applied, at the same paths. It fails, naming each path, when current
// has no value to restore. A document without REDACTED values is returned
// unchanged.
func Unredact(data, current []byte) ([]byte, error) {
	var root, cur yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(err)}
	}
	known := map[string]string{}
	if err := yaml.Unmarshal(current, &cur); err == nil {
		walkSecrets(&cur, reflect.TypeOf(Config{}), "", func(p string, n *yaml.Node, _ string) { known[p] = n.Value })
	}
	var errs Errors
	changed := false
	walkSecrets(&root, reflect.TypeOf(Config{}), "", func(p string, n *yaml.Node, kind string) {
		if !strings.Contains(n.Value, Redacted) {
			return
		}
		old, ok := known[p]
		if kind == "password" && ok { // restore only the password part
			b, pw, a, okNew := splitPassword(n.Value)
			_, oldPW, _, okOld := splitPassword(old)
			if okNew && okOld && pw == Redacted {
				n.Value, changed = b+oldPW+a, true
				return
			}
			ok = false
		}
		if !ok || old == Redacted || (kind != "password" && n.Value != Redacted) {
			errs = append(errs, Error{Path: p, Line: n.Line, Column: n.Column,
				Message: "the value is REDACTED and the running configuration has no value to restore; write the secret or a ${VAR} reference"})
			return
		}
		n.Value, n.Style, changed = old, 0, true
	})
	if errs != nil {
		return nil, errs
	}
	if !changed {
		return data, nil
	}
	return encode(&root, DetectFormat(data))
}

func encode(root *yaml.Node, format string) ([]byte, error) {
	if format == "json" {
		var v any
		if err := root.Decode(&v); err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(v, "", "  ")
		return append(b, '\n'), err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	err := enc.Close()
	return buf.Bytes(), err
}
