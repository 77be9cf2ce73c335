package config

import (
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

var entityColumn = map[string]bool{"llms": true, "agents": true, "tools": true}

// split cuts the document into chunks and resolves them: from the cache, by
// parsing changed chunks alone, or, when many changed, from one parse of the
// whole document. It reports false when the document must go through Parse
// instead. p.mu must be held, and p.gen already advanced for this parse;
// split changes only the cache, so p.last and eviction are the caller's.
func (p *Parser) split(data string, env LookupEnv) (*assembly, bool) {
	// Comments and section heads are not parsed by any chunk, so only text
	// the YAML parser would accept anywhere may be split.
	if DetectFormat([]byte(data)) != "yaml" || !printable(data) || mayHaveAnchorOrTag(data) {
		return nil, false
	}
	lines := strings.SplitAfter(data, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	offs := make([]int, len(lines)+1) // byte offset of each line
	for i, l := range lines {
		offs[i+1] = offs[i] + len(l)
	}
	sub := func(from, to int) string { return data[offs[from]:offs[to]] }
	a := &assembly{sections: map[string]int{}, entities: map[string]map[string]segment{}, whole: map[string]segment{}}
	type section struct {
		key        string
		start, end int // line indexes
		rest       string
	}
	var secs []section
	pre := 0
	for i, l := range lines {
		if l[0] == ' ' || blankOrComment(l) {
			if len(secs) == 0 {
				if !blankOrComment(l) {
					return nil, false
				}
				pre = i + 1
			}
			continue
		}
		key, rest, ok := keyAt(l, false, isLetterOrUnderscore)
		if !ok {
			return nil, false
		}
		if len(secs) > 0 {
			secs[len(secs)-1].end = i
		}
		secs = append(secs, section{key: key, start: i, rest: rest})
	}
	if len(secs) == 0 {
		return nil, false
	}
	secs[len(secs)-1].end = len(lines)
	order := []any{sub(0, pre)} // literal text or *pending, in document order
	var chunks []*pending
	var shape []keyShape
	seen := map[string]bool{}
	for _, s := range secs {
		if seen[s.key] {
			return nil, false
		}
		seen[s.key] = true
		if entityColumn[s.key] && blankOrComment(s.rest) {
			if head, ents, ok := entities(lines, s.key, s.start, s.end); ok {
				order = append(order, sub(s.start, head))
				for _, e := range ents {
					e.text = sub(e.start, e.end)
				}
				for _, e := range ents {
					order = append(order, e)
					chunks = append(chunks, e)
				}
				a.sections[s.key] = s.start + 1
				a.entities[s.key] = make(map[string]segment, len(ents))
				shape = append(shape, keyShape{key: s.key, line: s.start + 1, ents: ents})
				continue
			}
		}
		w := &pending{section: s.key, text: sub(s.start, s.end), start: s.start, end: s.end}
		order = append(order, w)
		chunks = append(chunks, w)
		shape = append(shape, keyShape{key: s.key, line: s.start + 1})
	}
	if !p.resolve(data, lines, chunks, shape, env) {
		return nil, false
	}
	for _, o := range order {
		switch o := o.(type) {
		case string:
			a.segments = append(a.segments, segment{text: o})
		case *pending:
			seg := segment{c: o.c, line: o.start + 1}
			a.segments = append(a.segments, seg)
			if o.entity == "" {
				a.whole[o.section] = seg
			} else {
				a.entities[o.section][o.entity] = seg
			}
		}
	}
	return a, true
}

// entities cuts a block-mapping section into one pending chunk per entity;
// head is the line of the first entity. ok is false when the section must be
// parsed whole.
func entities(lines []string, key string, start, end int) (head int, ents []*pending, ok bool) {
	k := -1
	for _, l := range lines[start+1 : end] {
		if !blankOrComment(l) {
			k = indentOf(l)
			break
		}
	}
	if k <= 0 {
		return 0, nil, false
	}
	head = start + 1
	names := map[string]bool{}
	header := key + ":\n"
	for i := start + 1; i < end; i++ {
		l := lines[i]
		if blankOrComment(l) {
			continue
		}
		switch ind := indentOf(l); {
		case ind < k:
			return 0, nil, false
		case ind == k:
			name, _, ok := keyAt(l[k:], true, isAlnum)
			if !ok || names[name] {
				return 0, nil, false
			}
			names[name] = true
			if len(ents) > 0 {
				ents[len(ents)-1].end = i
			} else {
				head = i
			}
			ents = append(ents, &pending{header: header, section: key, entity: name, start: i})
		default:
			if len(ents) == 0 {
				return 0, nil, false
			}
		}
	}
	if len(ents) == 0 {
		return 0, nil, false
	}
	ents[len(ents)-1].end = end
	return head, ents, true
}

// keyShape is a top-level key as the splitter saw it, with its entities.
type keyShape struct {
	key  string
	line int
	ents []*pending // nil for a section parsed whole
}

// sameShape reports whether the parsed document has exactly the keys the
// splitter saw, in order and at the same lines. A multi-line quoted string
// can hold a line that looks like a key; parsed alone, its chunk would not
// parse, but a whole-document parse must be checked against the split.
func sameShape(root *yaml.Node, shape []keyShape) bool {
	if len(root.Content) != 1 {
		return false
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2*len(shape) {
		return false
	}
	for i, s := range shape {
		k, v := m.Content[2*i], m.Content[2*i+1]
		if k.Value != s.key || k.Line != s.line || k.Column != 1 {
			return false
		}
		if s.ents == nil {
			continue
		}
		if v.Kind != yaml.MappingNode || len(v.Content) != 2*len(s.ents) {
			return false
		}
		for j, e := range s.ents {
			if ek := v.Content[2*j]; ek.Value != e.entity || ek.Line != e.start+1 {
				return false
			}
		}
	}
	return true
}

// pending is a chunk located in the document but not yet resolved.
type pending struct {
	header, section, entity, text string
	start, end                    int // line indexes [start, end) in the document
	key                           cacheKey
	c                             *chunk
}

// mayHaveAnchorOrTag reports whether s could contain a YAML anchor (&),
// alias (*) or tag (!): one of those characters at the start of a line or
// after a space, '[', '{' or ','. Such documents are not split, since an
// alias can reach across chunks.
func mayHaveAnchorOrTag(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '*', '!':
			if i == 0 {
				return true
			}
			switch s[i-1] {
			case ' ', '\n', '[', '{', ',':
				return true
			}
		}
	}
	return false
}

// printable reports whether s is valid UTF-8 made only of characters YAML
// allows (its printable set, less tab and carriage return, which the
// splitter does not handle).
func printable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return false
		case r == 0x85, r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD && r != 0xFEFF, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
		i += size
	}
	return true
}

// keyAt parses "NAME:" at the start of line, followed by a space or the end
// of the line. first says which characters may start NAME; the rest may also
// be digits, '_', and with dots set '.' and '-'. It returns the name and the
// text after the colon.
func keyAt(line string, dots bool, first func(byte) bool) (name, rest string, ok bool) {
	line = strings.TrimSuffix(line, "\n")
	if line == "" || !first(line[0]) {
		return "", "", false
	}
	i := 1
	for i < len(line) {
		c := line[i]
		if isAlnum(c) || c == '_' || (dots && (c == '.' || c == '-')) {
			i++
			continue
		}
		break
	}
	if i >= len(line) || line[i] != ':' || (i+1 < len(line) && line[i+1] != ' ') {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLetterOrUnderscore(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func indentOf(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

func blankOrComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '#'
}
