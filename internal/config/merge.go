package config

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Layer is one document of an overlay, named by where it came from.
type Layer struct {
	Name string
	Data []byte
}

// Merge overlays documents in order, later layers over earlier ones: maps
// merge by key, recursively; lists and scalars replace. Each layer may be
// YAML or JSON; an empty layer adds nothing. The result is YAML, in the
// order keys first appeared. With origins, every value carries a line
// comment naming the layer it came from. An error names the layer.
func Merge(layers []Layer, origins bool) ([]byte, error) {
	var root *yaml.Node
	from := map[*yaml.Node]string{}
	for _, l := range layers {
		var doc yaml.Node
		if err := yaml.Unmarshal(l.Data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", l.Name, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		n := expandAliases(doc.Content[0])
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: the document must be a mapping of keys, not %s", l.Name, kindName(n))
		}
		mark(n, l.Name, from)
		if root == nil {
			root = n
			continue
		}
		mergeMapping(root, n)
	}
	if root == nil {
		return nil, nil
	}
	if origins {
		annotate(root, from)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mergeMapping merges src's keys into dst.
func mergeMapping(dst, src *yaml.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := find(dst, k.Value)
		switch {
		case j < 0:
			dst.Content = append(dst.Content, k, v)
		case dst.Content[j+1].Kind == yaml.MappingNode && v.Kind == yaml.MappingNode:
			mergeMapping(dst.Content[j+1], v)
		default:
			dst.Content[j+1] = v
		}
	}
}

func find(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// expandAliases replaces aliases with copies of what they point to, so a
// layer's anchors cannot dangle once another layer replaces part of it.
func expandAliases(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return expandAliases(n.Alias)
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = expandAliases(k)
	}
	return &c
}

// mark records each node's layer and gives it block style, so JSON and
// flow-style layers merge into one readable YAML document. Strings lose
// quotes the encoder does not need; it quotes any that would otherwise
// read as another type.
func mark(n *yaml.Node, name string, from map[*yaml.Node]string) {
	from[n] = name
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		n.Style = 0
	case yaml.ScalarNode:
		if n.Tag == "!!str" && (n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle) {
			n.Style = 0
		}
	}
	for _, c := range n.Content {
		mark(c, name, from)
	}
}

// annotate puts each value's origin in its line comment (mappings are
// annotated key by key, so a merged map shows every layer it mixes).
func annotate(m *yaml.Node, from map[*yaml.Node]string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
			annotate(v, from)
			continue
		}
		if v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
			v.Style |= yaml.FlowStyle // one line, so the comment names the whole value
		}
		v.LineComment = "from " + from[v]
		k.LineComment = ""
	}
}
