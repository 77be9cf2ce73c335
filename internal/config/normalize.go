package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Normalisation reads the original Hector's spellings of a setting as the
// canonical one, in one step right after decoding: a schema type with old
// spellings implements normalizer, and the decoder calls it once the type's
// mapping is decoded. Each rule moves the old field's value to its canonical
// field, gives the canonical path the old key's position (so errors point at
// the user's own line), and records a warning that says what it became. In a
// migration (hector config migrate) the same rule also rewrites the YAML
// nodes, so the printed document is the canonical one: one code path
// decides what every old spelling means.
//
// Every part of a document is decoded through the same decoder, whether
// whole (Parse) or in chunks (Parser), so both see the same normalisations.
// Rules that read several sections (databases with storage) run on the
// assembled configuration instead (sections.go).
type normalizer interface{ normalize(c *norm) }

// norm is what a rule sees: the decoder, the struct's mapping node and path.
type norm struct {
	d    *decoder
	n    *yaml.Node
	path string
}

func (c *norm) key(k string) string { return childPath(c.path, k) }

func (c *norm) pos(k string) Pos { return c.d.pos[c.key(k)] }

// warn records a normalisation of key k.
func (c *norm) warn(k, format string, args ...any) {
	p := c.pos(k)
	c.d.warn(Error{Path: c.key(k), Line: p.Line, Column: p.Col, Message: fmt.Sprintf(format, args...)})
}

// fail records an error about key k: two spellings that disagree.
func (c *norm) fail(k, format string, args ...any) {
	p := c.pos(k)
	c.d.add(Error{Path: c.key(k), Line: p.Line, Column: p.Col, Message: fmt.Sprintf(format, args...)})
}

// rename reads the value written under from as to's.
func (c *norm) rename(from, to string) {
	c.d.pos[c.key(to)] = c.pos(from)
	c.warn(from, "the original Hector's spelling of %s: read as %s", to, c.key(to))
	if k := c.keyNode(from); c.d.migrate && k != nil {
		k.Value = to
	}
}

// same drops from, which repeats to's value.
func (c *norm) same(from, to string) {
	c.warn(from, "the original Hector's spelling of %s, which is also set to the same value: ignored", to)
	c.remove(from)
}

// conflict reports from and to set to different values.
func (c *norm) conflict(from, to string, fromVal, toVal any) {
	c.fail(from, "is %v but %s is %v: they are one setting (%s is the original Hector's spelling); set %s only", fromVal, to, toVal, from, to)
}

// value reads an old value of key as its canonical one.
func (c *norm) value(k, old, now string) {
	c.warn(k, "%q is the original Hector's name: read as %q", old, now)
	if n := c.valueNode(k); c.d.migrate && n != nil {
		n.Value, n.Style = now, 0
	}
}

// remove deletes key k from the mapping in a migration.
func (c *norm) remove(k string) {
	if c.d.migrate {
		takeKey(c.n, k)
	}
}

func (c *norm) keyNode(k string) *yaml.Node {
	if i := keyIndex(c.n, k); i >= 0 {
		return c.n.Content[i]
	}
	return nil
}

func (c *norm) valueNode(k string) *yaml.Node {
	i := keyIndex(c.n, k)
	if i < 0 || c.n.Content[i+1].Kind == yaml.AliasNode { // an alias is shared with another key: left as written
		return nil
	}
	return c.n.Content[i+1]
}

// keyIndex is the index in m.Content of key's key node, or -1 when m is
// not a mapping holding key.
func keyIndex(m *yaml.Node, key string) int {
	if m == nil || m.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// alias moves a string written under an old key to its canonical field.
func (c *norm) alias(from, to string, old, canonical *string) {
	switch {
	case *old == "":
		return
	case *canonical == "":
		*canonical = *old
		c.rename(from, to)
	case *canonical == *old:
		c.same(from, to)
	default:
		c.conflict(from, to, fmt.Sprintf("%q", *old), fmt.Sprintf("%q", *canonical))
	}
	*old = ""
}

func (l *LLM) normalize(c *norm) { c.alias("type", "provider", &l.Type, &l.Provider) }

func (a *Agent) normalize(c *norm) {
	c.alias("name", "display_name", &a.Name, &a.DisplayName)
	if a.Type == "native" || a.Type == "llm" {
		c.value("type", a.Type, "local")
		a.Type = "local"
	}
}

func (t *Tool) normalize(c *norm) {
	c.alias("working_directory", "working_dir", &t.WorkingDirectory, &t.WorkingDir)
}

func (a *Auth) normalize(c *norm) {
	switch {
	case a.Enabled == nil:
		return
	case a.Require == nil:
		a.Require = a.Enabled
		c.rename("enabled", "require")
	case *a.Require == *a.Enabled:
		c.same("enabled", "require")
	default:
		c.conflict("enabled", "require", *a.Enabled, *a.Require)
	}
	a.Enabled = nil
}

func (cfg *Config) normalize(c *norm) {
	switch cfg.Version {
	case "1.0":
		c.warn("version", `"1.0" is the original Hector's name: read as "1"`)
	case "2", "2.0":
		c.warn("version", `%q is the original Hector's v2 schema: read as "1", its sections as version 1's (each that differs is listed)`, cfg.Version)
	default:
		return
	}
	cfg.Version = "1"
	if n := c.valueNode("version"); c.d.migrate && n != nil {
		n.Value, n.Style = "1", yaml.DoubleQuotedStyle
	}
}
