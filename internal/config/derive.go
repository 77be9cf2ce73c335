package config

import (
	"reflect"
	"strconv"
	"strings"
)

// derive makes the chunks of misses from a parse of the whole document:
// each takes its part of the decoded configuration, the positions and decode
// errors under its path (moved to its own line numbering) and its lines of
// the redacted document. p.mu must be held; raw must be the parse of data,
// with the shape the splitter saw (sameShape), and lines data's lines. Every
// miss ends with its chunk set and cached, equal to what parseAlone would
// have made of it.
func (p *Parser) derive(data string, lines []string, raw *rawParse, misses []*pending) {
	type bucket struct {
		pos  Positions
		errs Errors
	}
	owner := make(map[[2]string]*bucket, len(misses))
	for _, m := range misses {
		owner[[2]string{m.section, m.entity}] = &bucket{pos: Positions{}}
	}
	find := func(path string) *bucket {
		top, name := splitPath(path)
		if b, ok := owner[[2]string{top, name}]; ok {
			return b
		}
		return owner[[2]string{top, ""}]
	}
	for path, pos := range raw.pos {
		if b := find(path); b != nil {
			b.pos[path] = pos
		}
	}
	for _, e := range raw.errs {
		if b := find(e.Path); b != nil {
			b.errs = append(b.errs, e)
		}
	}
	var redLines []string
	if red, ok := redactSplice([]byte(data), &raw.root); ok {
		if rl := strings.SplitAfter(string(red), "\n"); len(rl) >= len(lines) {
			redLines = rl
		}
	}
	root := reflectValue(raw.cfg)
	for _, m := range misses {
		c := &chunk{header: m.header, section: m.section, entity: m.entity, text: m.text, used: p.gen, cfg: &Config{}, pos: Positions{}}
		off := m.start - strings.Count(m.header, "\n") // document line - off = the chunk's own line
		b := owner[[2]string{m.section, m.entity}]
		for path, pos := range b.pos {
			pos.Line -= off
			c.pos[path] = pos
		}
		for _, e := range b.errs {
			if e.Line > 0 {
				e.Line -= off
			}
			c.errs = append(c.errs, e)
		}
		if idx, known := configFields[m.section]; known {
			src, dst := root.Field(idx), reflectValue(c.cfg).Field(idx)
			switch {
			case m.entity != "":
				one := reflect.MakeMapWithSize(src.Type(), 1)
				name := reflect.ValueOf(m.entity)
				one.SetMapIndex(name, src.MapIndex(name))
				dst.Set(one)
			default:
				dst.Set(copyMap(src))
			}
		}
		if redLines != nil {
			c.redacted, c.spliced = strings.Join(redLines[m.start:m.end], ""), true
		}
		p.cache[m.key] = c
		m.c = c
	}
}

// copyMap returns a copy of v when it is a non-nil map, else v itself.
func copyMap(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Map || v.IsNil() {
		return v
	}
	m := reflect.MakeMapWithSize(v.Type(), v.Len())
	for it := v.MapRange(); it.Next(); {
		m.SetMapIndex(it.Key(), it.Value())
	}
	return m
}

// splitPath returns a path's top-level key and, below it, the first key
// (the entity name for llms, agents and tools).
func splitPath(path string) (top, name string) {
	top, rest := path, ""
	if i := strings.IndexAny(path, ".["); i >= 0 {
		top, rest = path[:i], path[i:]
	}
	switch {
	case strings.HasPrefix(rest, "."):
		name = rest[1:]
		if i := strings.IndexAny(name, ".["); i >= 0 {
			name = name[:i]
		}
	case strings.HasPrefix(rest, `["`):
		if end := strings.Index(rest, `"]`); end >= 0 {
			name, _ = strconv.Unquote(rest[1 : end+1])
		}
	}
	return top, name
}

var configFields, _ = fieldsOf(reflect.TypeOf(Config{}))
