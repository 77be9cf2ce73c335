package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Migrate rewrites a document in the canonical schema: every old spelling
// that Parse would read with a warning is written as what it is read as,
// so the result parses to the same configuration without those warnings.
// The renames are the decoder's own normalisations run in migration mode
// (normalize.go); the cross-section ones (sections.go) are computed as
// Parse computes them and then written into the tree. ${VAR} references
// are kept, not expanded. Comments stay where the YAML library keeps
// them; a JSON document is printed as JSON, in its own key order.
//
// It returns the new document and what changed (the warnings Parse gives
// the old one), or the document's errors: an invalid document is not
// migrated.
func Migrate(data []byte, env LookupEnv) ([]byte, Errors, Errors) {
	format := DetectFormat(data)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, Errors{syntaxError(err)}
	}
	if len(root.Content) == 0 {
		return nil, nil, Errors{{Path: "(document)", Line: 1, Column: 1, Message: "the document is empty"}}
	}
	d := &decoder{pos: Positions{}, env: env, migrate: true, keepUnset: true}
	cfg := &Config{}
	d.decode(&root, reflectValue(cfg), "")
	before := *cfg
	tools := map[string][]string{}
	for name, a := range cfg.Agents {
		tools[name] = a.Tools
	}
	// Only what decides the rewrite is checked: the rest of validation
	// would judge references that stand for values this machine may lack.
	errs, notes := partWarnings(d.done())
	sn := normalizeSections(cfg, d.pos.lookup)
	if errs = append(errs, sn.errs...); errs != nil {
		return nil, nil, errs.sorted()
	}
	m := root.Content[0]
	if _, stores := stores(&before); len(before.Databases) > 0 || len(stores) > 0 {
		if url := migrateDatabase(m, sn.chosen); strings.Contains(url, "${") {
			p, _ := sn.lookup("database.url")
			notes = append(notes, Error{Path: "database.url", Line: p.Line, Column: p.Col,
				Message: "its ${VAR} references go into the URL as they are: a value holding @ : / ? # or % must be percent-encoded"})
		}
	}
	if before.Server.Observability != nil {
		if obs := takeKey(mapping(m, "server"), "observability"); obs != nil {
			takeKey(m, "observability") // empty, or normalizeSections would have refused
			m.Content = append(m.Content, obs...)
		}
	}
	for name, a := range cfg.Agents {
		if len(a.Tools) != len(tools[name]) {
			keepTools(mapping(mapping(m, "agents"), name), a.Tools)
		}
	}
	migrateKeys(m, cfg.Server.Auth.APIKeys)
	if s := mapping(m, "server"); s != nil && len(s.Content) == 0 {
		takeKey(m, "server")
	}
	out, err := encodeOrdered(&root, format)
	if err != nil {
		return nil, nil, Errors{{Path: "(document)", Message: err.Error()}}
	}
	if notes = append(notes, sn.notes...); notes != nil {
		for i := range notes {
			notes[i].warn = false
		}
		notes = notes.sorted()
	}
	return out, notes, nil
}

// migrateKeys writes plain-string API keys as {name, key, role}, with the
// name and role they have (key-N, admin).
func migrateKeys(m *yaml.Node, keys []APIKey) {
	list := valueOf(mapping(mapping(m, "server"), "auth"), "api_keys", yaml.SequenceNode)
	for i, k := range keys {
		if !k.Plain || list == nil || i >= len(list.Content) || list.Content[i].Kind != yaml.ScalarNode {
			continue
		}
		key := list.Content[i]
		scalar := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
		list.Content[i] = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{ // as authDefaults names them
			scalar("name"), scalar(fmt.Sprintf("key-%d", i+1)), scalar("key"), key, scalar("role"), scalar(string(RoleAdmin))}}
	}
}

// migrateDatabase replaces databases, storage and server.tasks/sessions
// with database.url, built from the chosen entry's text as written (its
// ${VAR} references kept), where databases was; with no entry chosen
// (an in-memory store), they are only removed.
func migrateDatabase(m *yaml.Node, chosen string) string {
	url := ""
	if chosen != "" {
		url = writtenURL(mapping(mapping(m, "databases"), chosen))
		takeKey(m, "database") // empty, or normalizeSections would have refused
	}
	at := keyIndex(m, "databases")
	if at < 0 {
		at = len(m.Content)
	}
	if url != "" {
		entry := []*yaml.Node{{Kind: yaml.ScalarNode, Value: "database"}, {Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "url"}, {Kind: yaml.ScalarNode, Value: url}}}}
		m.Content = slices.Insert(m.Content, at, entry...)
	}
	takeKey(m, "databases")
	takeKey(m, "storage")
	if s := mapping(m, "server"); s != nil {
		takeKey(s, "tasks")
		takeKey(s, "sessions")
	}
	return url
}

// valueOf returns the node of kind under key of mapping m, or nil.
func valueOf(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	if i := keyIndex(m, key); i >= 0 && m.Content[i+1].Kind == kind {
		return m.Content[i+1]
	}
	return nil
}

// mapping returns the mapping under key of m, or nil.
func mapping(m *yaml.Node, key string) *yaml.Node { return valueOf(m, key, yaml.MappingNode) }

// takeKey removes key from mapping m and returns its key and value nodes.
func takeKey(m *yaml.Node, key string) []*yaml.Node {
	i := keyIndex(m, key)
	if i < 0 {
		return nil
	}
	pair := []*yaml.Node{m.Content[i], m.Content[i+1]}
	m.Content = slices.Delete(m.Content, i, i+2)
	return pair
}

// keepTools leaves only keep in an agent's tools list.
func keepTools(agent *yaml.Node, keep []string) {
	if list := valueOf(agent, "tools", yaml.SequenceNode); list != nil {
		list.Content = slices.DeleteFunc(list.Content, func(n *yaml.Node) bool { return !slices.Contains(keep, n.Value) })
	}
}

// encodeOrdered prints a node tree as YAML, or as JSON keeping the order
// of keys.
func encodeOrdered(root *yaml.Node, format string) ([]byte, error) {
	if format != "json" {
		return encode(root, format)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, root.Content[0], ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, n *yaml.Node, indent string) error {
	in := indent + "  "
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, indent)
	case yaml.MappingNode, yaml.SequenceNode:
		open, close, step := "{", "}", 2
		if n.Kind == yaml.SequenceNode {
			open, close, step = "[", "]", 1
		}
		b.WriteString(open)
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + in)
			if step == 2 {
				b.WriteString(jsonString(n.Content[i].Value) + ": ")
			}
			if err := writeJSON(b, n.Content[i+step-1], in); err != nil {
				return err
			}
		}
		if len(n.Content) > 0 {
			b.WriteString("\n" + indent)
		}
		b.WriteString(close)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return err
		}
		if s, ok := v.(string); ok {
			b.WriteString(jsonString(s))
			return nil
		}
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b.Write(j)
	default:
		return fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	return nil
}

// writtenURL is the database URL of a databases entry's node, from the
// text written in it, its ${VAR} references kept.
func writtenURL(entry *yaml.Node) string {
	f := map[string]string{}
	for i := 0; entry != nil && i+1 < len(entry.Content); i += 2 {
		f[entry.Content[i].Value] = entry.Content[i+1].Value
	}
	u, _ := databaseURL(f, true)
	return u
}
