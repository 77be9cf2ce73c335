package config

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cacheKey finds a chunk by its section and exact text (a substring of the
// document it came from, so building the key copies nothing).
type cacheKey struct{ section, text string }

// chunk is one independently parsed part of a document.
type chunk struct {
	header   string // "agents:\n" for entity chunks, "" for whole sections
	section  string // the top-level key
	entity   string // the entity name, for entity chunks
	text     string
	cfg      *Config
	pos      Positions // in the chunk's own document (header included)
	errs     Errors
	redacted string // text with secrets redacted; valid when spliced
	spliced  bool
	bad      bool // does not parse on its own: fall back to Parse
	used     int  // generation of the last parse that used it
}

// evict keeps the chunks used by the last two parses and deletes the rest.
// p.mu must be held. ParseHashed calls it after a full split, never after a
// patch, so a run of patches keeps the chunks of the document they started
// from.
func (p *Parser) evict() {
	for k, c := range p.cache {
		if c.used < p.gen-1 {
			delete(p.cache, k)
		}
	}
}

// maxParsedAlone is how many changed chunks are parsed one by one; with more,
// one parse of the whole document is cheaper, and the changed chunks'
// results are taken from it.
const maxParsedAlone = 256

// resolve gives every pending chunk its parsed chunk: a cached one, one
// parsed alone, or one derived from a parse of the whole document when more
// than maxParsedAlone changed. p.mu must be held. It reports false when the
// document must go through Parse instead; the chunks resolved so far stay
// cached (a chunk that did not parse alone is cached as bad, so the same
// text falls back without parsing again).
func (p *Parser) resolve(data string, lines []string, chunks []*pending, shape []keyShape, env LookupEnv) bool {
	var misses []*pending
	for _, c := range chunks {
		c.key = cacheKey{c.section, c.text}
		if hit, ok := p.cache[c.key]; ok {
			if hit.bad {
				return false
			}
			hit.used, c.c = p.gen, hit
		} else {
			misses = append(misses, c)
		}
	}
	limit := maxParsedAlone
	if p.alone != 0 {
		limit = p.alone
	}
	if len(misses) <= limit {
		for _, m := range misses {
			if m.c = p.parseAlone(m, env); m.c.bad {
				return false
			}
		}
		return true
	}
	raw, serr := parseRaw([]byte(data), env)
	if serr != nil || !sameShape(&raw.root, shape) {
		return false // Parse reports the syntax error, or parses what the split misread
	}
	p.derive(data, lines, raw, misses)
	return true
}

// parseAlone parses one chunk as a document of its own, behind its
// section's header, and caches it under m.key, even when it is bad (it does
// not parse, or does not hold exactly its one entity). p.mu must be held.
func (p *Parser) parseAlone(m *pending, env LookupEnv) *chunk {
	c := &chunk{header: m.header, section: m.section, entity: m.entity, text: m.text, used: p.gen}
	p.cache[m.key] = c
	mini := m.header + m.text
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(mini), &root); err != nil || len(root.Content) == 0 {
		c.bad = true
		return c
	}
	d := &decoder{pos: Positions{}, env: env}
	c.cfg = &Config{}
	d.decode(&root, reflectValue(c.cfg), "")
	c.pos, c.errs = d.pos, d.done()
	if m.entity != "" { // the chunk must hold exactly its one entity
		f := reflectValue(c.cfg).Field(configFields[m.section])
		if f.Len() != 1 || !f.MapIndex(reflect.ValueOf(m.entity)).IsValid() {
			c.bad = true
			return c
		}
	}
	if red, ok := redactSplice([]byte(mini), &root); ok && strings.HasPrefix(string(red), m.header) {
		c.redacted, c.spliced = string(red[len(m.header):]), true
	}
	return c
}
