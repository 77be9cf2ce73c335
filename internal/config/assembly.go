package config

import (
	"strings"
)

// segment is a run of the document: literal text, or a chunk placed at a line.
type segment struct {
	text string
	c    *chunk
	line int // first line of the chunk's text in the document
}

// assembly is a split document. Once ParseHashed returns, it is never
// changed (a patch builds a new one that shares its unchanged maps), so
// RedactLater and position lookups read it without p.mu.
type assembly struct {
	data      string // the document, to recognise it in Redact
	hash      string // its hash
	patch     *patchInfo
	valid     bool // it parsed and validated without errors
	sectioned bool // its cross-section normalisations changed something
	segments  []segment
	sections  map[string]int                // top-level key -> its line, for sections split by entity
	entities  map[string]map[string]segment // section -> entity -> segment
	whole     map[string]segment            // top-level key -> segment, for sections parsed whole
}

// assemble builds the configuration from the chunks and collects their
// decode errors at document positions, in document order.
func (a *assembly) assemble() (*Config, Errors) {
	cfg := &Config{}
	root := reflectValue(cfg)
	var errs Errors
	for _, s := range a.segments {
		if s.c == nil {
			continue
		}
		off := s.offset()
		for _, e := range s.c.errs {
			if e.Line > 0 {
				e.Line += off
			}
			errs = append(errs, e)
		}
		idx, known := configFields[s.c.section]
		if !known {
			continue // an unknown key: its decode error says so
		}
		if s.c.entity == "" {
			root.Field(idx).Set(copyMap(reflectValue(s.c.cfg).Field(idx))) // never share a cached map: defaults write to it
			continue
		}
		n, name := len(a.entities[s.c.section]), s.c.entity
		switch s.c.section { // typed, not reflect: this runs for every entity
		case "llms":
			if cfg.LLMs == nil {
				cfg.LLMs = make(map[string]LLM, n)
			}
			cfg.LLMs[name] = s.c.cfg.LLMs[name]
		case "agents":
			if cfg.Agents == nil {
				cfg.Agents = make(map[string]Agent, n)
			}
			cfg.Agents[name] = s.c.cfg.Agents[name]
		case "tools":
			if cfg.Tools == nil {
				cfg.Tools = make(map[string]Tool, n)
			}
			cfg.Tools[name] = s.c.cfg.Tools[name]
		}
	}
	return cfg, errs
}

// lookup answers a position query for the assembled document.
func (a *assembly) lookup(path string) (Pos, bool) {
	top, name := splitPath(path)
	if seg, ok := a.whole[top]; ok {
		return seg.pos(path)
	}
	ents, ok := a.entities[top]
	if !ok {
		return Pos{}, false
	}
	if path == top {
		return Pos{a.sections[top], 1}, true
	}
	seg, ok := ents[name]
	if !ok {
		return Pos{}, false
	}
	return seg.pos(path)
}

func (s segment) pos(path string) (Pos, bool) {
	p, ok := s.c.pos[path]
	if ok {
		p.Line += s.offset()
	}
	return p, ok
}

// offset converts a line of the chunk's own document to a document line.
func (s segment) offset() int {
	return s.line - 1 - strings.Count(s.c.header, "\n")
}

// redact splices the redacted text of a's chunks.
func (a *assembly) redact(data []byte) ([]byte, error) {
	var b strings.Builder
	b.Grow(len(data))
	for _, s := range a.segments {
		switch {
		case s.c == nil:
			b.WriteString(s.text)
		case !s.c.spliced:
			return Redact(data)
		default:
			b.WriteString(s.c.redacted)
		}
	}
	return []byte(b.String()), nil
}
