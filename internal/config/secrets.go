package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Redacted replaces a secret wherever configuration is shown or stored.
const Redacted = "REDACTED"

// envRef matches a ${NAME}, ${NAME:-default} or ${NAME:default} reference;
// group 1 is NAME.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-?[^}]*)?\}`)

// plainRef matches a ${NAME} reference without a default.
var plainRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// isReference reports whether s consists only of ${VAR} references, which
// name a secret without containing it. A reference with a default is not
// one: the default is written in the document, and may be the secret
// (redactValue shows it as ${VAR:-REDACTED}).
func isReference(s string) bool {
	return s != "" && strings.TrimSpace(plainRef.ReplaceAllString(s, "")) == ""
}

// secretVisit is called for each secret scalar in a document.
type secretVisit func(path string, n *yaml.Node, kind string)

// walkSecrets visits the secret scalars of a document: fields tagged
// `secret:"true"` (whole value), `secret:"values"` (each map value) and
// `secret:"url"` (the password and secret query values of a URL).
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
		if f, ok := shortField(t); ok && n.Kind == yaml.ScalarNode {
			if kind := f.Tag.Get("secret"); kind != "" {
				visit(path, n, kind)
			}
			return
		}
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
			case "true", "url":
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
		if n.Kind == yaml.MappingNode {
			walkSecrets(n, t.Elem(), path, visit) // one entity without the list
		}
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				walkSecrets(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), visit)
			}
		}
	}
}

// redactValue returns the shown form of a secret scalar.
func redactValue(v, kind string) string {
	if kind == "url" {
		return redactURLSecrets(v)
	}
	if isReference(v) || v == "" {
		return v
	}
	if strings.TrimSpace(envRef.ReplaceAllString(v, "")) == "" {
		return redactDefaults(v) // ${VAR:-REDACTED}: the references stay readable
	}
	return Redacted
}

// redactDefaults replaces the defaults of s's references with REDACTED:
// written in the document, a default may be the secret itself.
func redactDefaults(s string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		if ref == "${"+name+"}" {
			return ref
		}
		return "${" + name + ":-" + Redacted + "}"
	})
}

// Redact returns the document with every literal secret replaced by
// REDACTED. ${VAR} references are kept: they name a secret without holding
// it. Only the secret values change; the rest of the text, comments and
// layout included, is kept byte for byte.
func Redact(data []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(err)
	}
	return redactNode(data, &root)
}

// redactNode redacts data, whose parse is root.
func redactNode(data []byte, root *yaml.Node) ([]byte, error) {
	return applyReplacements(data, root, secretReplacements(root))
}

// redactSplice redacts data by splicing only; ok is false when a secret
// cannot be spliced (the caller then uses Redact on the whole document).
func redactSplice(data []byte, root *yaml.Node) ([]byte, bool) {
	reps := secretReplacements(root)
	if len(reps) == 0 {
		return data, true
	}
	return splice(data, reps)
}

func secretReplacements(root *yaml.Node) []replacement {
	var reps []replacement
	walkSecrets(root, reflect.TypeOf(Config{}), "", func(_ string, n *yaml.Node, kind string) {
		if r := redactValue(n.Value, kind); r != n.Value {
			reps = append(reps, replacement{n: n, with: r})
		}
	})
	return reps
}

// replacement swaps the value of one scalar node; quote forces the new
// value into double quotes.
type replacement struct {
	n     *yaml.Node
	with  string
	quote bool
}

// applyReplacements splices the new values into data. When a value cannot be
// located in the text (a multi-line scalar), the document is re-encoded
// instead, which keeps comments but not necessarily the layout.
func applyReplacements(data []byte, root *yaml.Node, reps []replacement) ([]byte, error) {
	if len(reps) == 0 {
		return data, nil
	}
	if out, ok := splice(data, reps); ok {
		return out, nil
	}
	for _, r := range reps {
		r.n.Value, r.n.Style = r.with, 0
		if r.quote {
			r.n.Style = yaml.DoubleQuotedStyle
		}
	}
	return encode(root, DetectFormat(data))
}

// splice replaces each scalar token in data, keeping its quoting style.
func splice(data []byte, reps []replacement) ([]byte, bool) {
	type edit struct {
		start, end int
		text       string
	}
	lineStart := []int{0}
	for i, c := range data {
		if c == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	edits := make([]edit, 0, len(reps))
	for _, r := range reps {
		n := r.n
		if n.Line < 1 || n.Line > len(lineStart) || strings.Contains(n.Value, "\n") {
			return nil, false
		}
		off := lineStart[n.Line-1]
		for col := 1; col < n.Column; col++ { // columns count characters
			if off >= len(data) || data[off] == '\n' {
				return nil, false
			}
			_, size := utf8.DecodeRune(data[off:])
			off += size
		}
		end, ok := tokenEnd(data, off, n)
		if !ok {
			return nil, false
		}
		text := r.with
		switch {
		case r.quote || n.Style&yaml.DoubleQuotedStyle != 0:
			text = jsonString(r.with)
		case n.Style&yaml.SingleQuotedStyle != 0:
			text = "'" + strings.ReplaceAll(r.with, "'", "''") + "'"
		}
		edits = append(edits, edit{off, end, text})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), data...)
	for i, e := range edits {
		if i > 0 && e.end > edits[i-1].start {
			return nil, false // overlapping: an alias or a surprise
		}
		out = append(out[:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out, true
}

// tokenEnd finds where the scalar n, starting at off, ends on its line.
func tokenEnd(data []byte, off int, n *yaml.Node) (int, bool) {
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if off >= len(data) || data[off] != '"' {
			return 0, false
		}
		for j := off + 1; j < len(data) && data[j] != '\n'; j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if off >= len(data) || data[off] != '\'' {
			return 0, false
		}
		for j := off + 1; j < len(data) && data[j] != '\n'; j++ {
			if data[j] == '\'' {
				if j+1 < len(data) && data[j+1] == '\'' {
					j++
					continue
				}
				return j + 1, true
			}
		}
	case n.Style == 0 || n.Style == yaml.FlowStyle:
		if bytes.HasPrefix(data[off:], []byte(n.Value)) {
			return off + len(n.Value), true
		}
	}
	return 0, false
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
	plainBefore := map[string]bool{} // written as a plain scalar in current
	if err := yaml.Unmarshal(current, &cur); err == nil {
		walkSecrets(&cur, reflect.TypeOf(Config{}), "", func(p string, n *yaml.Node, _ string) {
			known[p] = n.Value
			plainBefore[p] = n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
		})
	}
	var errs Errors
	var reps []replacement
	walkSecrets(&root, reflect.TypeOf(Config{}), "", func(p string, n *yaml.Node, kind string) {
		if !strings.Contains(n.Value, Redacted) {
			return
		}
		old, ok := known[p]
		if kind == "url" && ok { // restore only the secret parts
			if restored, okURL := unredactURL(n.Value, old); okURL {
				reps = append(reps, replacement{n: n, with: restored})
				return
			}
			ok = false
		}
		// A value shown as ${VAR:-REDACTED} is restored whole when it is
		// the shown form of the running one.
		shown := n.Value == Redacted || (ok && n.Value == redactValue(old, kind))
		if !ok || old == Redacted || (kind != "url" && !shown) {
			errs = append(errs, Error{Path: p, Line: n.Line, Column: n.Column,
				Message: "the value is REDACTED and the running configuration has no value to restore; write the secret or a ${VAR} reference"})
			return
		}
		// A plain REDACTED is restored as the running document wrote the
		// value: plain if it was plain there, else quoted, since a secret may
		// hold characters that are not safe in a plain scalar.
		plainHere := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0
		reps = append(reps, replacement{n: n, with: old, quote: plainHere && !plainBefore[p]})
	})
	if errs != nil {
		return nil, errs
	}
	return applyReplacements(data, &root, reps)
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

// jsonString quotes s as a JSON (and YAML double-quoted) string, leaving
// &, < and > as they are.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
