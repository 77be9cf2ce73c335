package config

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Parser parses successive versions of one configuration document and
// reuses the work for the parts whose text did not change, so a one-agent
// edit of a 10,000-agent document costs about one agent's worth of parsing.
//
// A block-style YAML document is split into chunks: each top-level section,
// and each entity under llms, agents and tools. A chunk whose exact text was
// seen in one of the last two parses reuses its decoded value, positions,
// decode errors and redacted text; other chunks are parsed on their own.
// The assembled configuration is then validated as a whole, exactly as
// Parse does. Documents the splitter cannot prove safe to split (JSON,
// anchors and aliases, tabs, unusual indentation, duplicate keys, or a chunk
// that does not parse on its own) go through Parse unchanged. The result is
// always identical to Parse's: a fuzz test holds the two to that.
//
// The cache assumes the environment seen by env does not change between
// calls. A Parser is safe for concurrent use; its zero value is ready.
type Parser struct {
	// alone overrides maxParsedAlone when non-zero; -1 derives every change
	// from a whole-document parse (tests use it to cover both paths).
	alone int

	mu      sync.Mutex
	gen     int
	cache   map[cacheKey]*chunk
	last    *assembly // the most recent split document, for Redact and patch
	patches int       // documents patched since the last split
}

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

// segment is a run of the document: literal text, or a chunk placed at a line.
type segment struct {
	text string
	c    *chunk
	line int // first line of the chunk's text in the document
}

// assembly is a split document.
type assembly struct {
	data     string // the document, to recognise it in Redact
	hash     string // its hash
	patch    *patchInfo
	valid    bool // it parsed and validated without errors
	segments []segment
	sections map[string]int                // top-level key -> its line, for sections split by entity
	entities map[string]map[string]segment // section -> entity -> segment
	whole    map[string]segment            // top-level key -> segment, for sections parsed whole
}

var entityColumn = map[string]bool{"llms": true, "agents": true, "tools": true}

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

// Parse is Parse with reuse of unchanged parts.
func (p *Parser) Parse(data []byte, env LookupEnv, stats *ParseStats) (*Document, Errors) {
	return p.ParseHashed(data, Hash(data), env, stats)
}

// ParseHashed is Parse for a caller that already knows Hash(data), so a
// large document is not hashed again.
func (p *Parser) ParseHashed(data []byte, hash string, env LookupEnv, stats *ParseStats) (*Document, Errors) {
	if stats == nil {
		stats = &ParseStats{}
	}
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cache == nil {
		p.cache = map[cacheKey]*chunk{}
	}
	baseValid := p.last != nil && p.last.valid
	a, patched := p.patch(string(data), env)
	if !patched {
		p.gen++
		var ok bool
		if a, ok = p.split(string(data), env); !ok {
			p.last = nil
			return ParseWithStats(data, env, stats)
		}
	}
	a.data, a.hash = string(data), hash
	doc := &Document{Format: "yaml", Hash: hash, pos: a.lookup, patch: a.patch}
	cfg, errs := a.assemble()
	p.last = a
	if !patched {
		p.evict()
		p.patches = 0
	}
	stats.Decode = time.Since(start)
	start = time.Now()
	defer func() { stats.Validate = time.Since(start) }()
	// A patch of a valid document needs only its changed entity checked.
	if patched && baseValid && errs == nil && validateOne(cfg, doc.pos, a.patch.section, a.patch.entity) {
		doc.accept(cfg)
		a.valid = true
		return scrubEnv(data, env, doc, nil)
	}
	d, errs := finish(doc, cfg, errs)
	a.valid = errs == nil
	return scrubEnv(data, env, d, errs)
}

// Redact is Redact, reusing the redacted parts of the last parsed document
// when data is that document.
func (p *Parser) Redact(data []byte) ([]byte, error) { return p.RedactLater(data)() }

// RedactLater is Redact in two steps: it takes hold of the last parsed
// document's parts now, cheaply, and the returned function builds the
// redacted text whenever it is called (off a latency-sensitive path), even
// after later parses.
func (p *Parser) RedactLater(data []byte) func() ([]byte, error) {
	p.mu.Lock()
	a := p.last
	p.mu.Unlock()
	if a == nil || a.data != string(data) { // a compare, not another hash of the document
		return func() ([]byte, error) { return Redact(data) }
	}
	return func() ([]byte, error) { return a.redact(data) }
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

// evict keeps the chunks used by the last two parses.
func (p *Parser) evict() {
	for k, c := range p.cache {
		if c.used < p.gen-1 {
			delete(p.cache, k)
		}
	}
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

func indentOf(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

func blankOrComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '#'
}

// pending is a chunk located in the document but not yet resolved.
type pending struct {
	header, section, entity, text string
	start, end                    int // line indexes [start, end) in the document
	key                           cacheKey
	c                             *chunk
}

// maxParsedAlone is how many changed chunks are parsed one by one; with more,
// one parse of the whole document is cheaper, and the changed chunks'
// results are taken from it.
const maxParsedAlone = 256

// split cuts the document into chunks and resolves them: from the cache, by
// parsing changed chunks alone, or, when many changed, from one parse of the
// whole document. It reports false when the document must go through Parse
// instead.
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

// resolve gives every pending chunk its parsed chunk.
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

// parseAlone parses one chunk as a document of its own and caches it.
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
	c.pos, c.errs = d.pos, d.errs
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

// derive makes the chunks of misses from a parse of the whole document:
// each takes its part of the decoded configuration, the positions and decode
// errors under its path (moved to its own line numbering) and its lines of
// the redacted document.
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

// offset converts a line of the chunk's own document to a document line.
func (s segment) offset() int {
	return s.line - 1 - strings.Count(s.c.header, "\n")
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

// maxPatches bounds the documents patched in a row; the next one is split
// in full, which also evicts the chunks no longer used.
const maxPatches = 64

// patch handles the common edit, a change inside one entity that keeps its
// name and its number of lines, without splitting the whole document: the
// new text is compared with the last document's (common prefix and
// suffix), and only the entity that holds the difference is parsed. Every
// other segment, and the line of each, is the last document's. It reports
// false, changing nothing, for any other edit; split then does the work.
func (p *Parser) patch(data string, env LookupEnv) (*assembly, bool) {
	a := p.last
	if a == nil || p.patches >= maxPatches || len(a.data) == 0 {
		return nil, false
	}
	old := a.data
	pre := commonPrefix(old, data)
	suf := commonSuffix(old[pre:], data[pre:])
	oldEnd := len(old) - suf
	// The segment holding the first changed byte must hold all of them.
	i, off := -1, 0
	for k, s := range a.segments {
		l := len(s.text)
		if s.c != nil {
			l = len(s.c.text)
		}
		if pre < off+l {
			i = k
			break
		}
		off += l
	}
	if i < 0 {
		return nil, false
	}
	seg := a.segments[i]
	if seg.c == nil || seg.c.entity == "" || pre <= off || oldEnd > off+len(seg.c.text) {
		return nil, false
	}
	text := data[off : off+len(seg.c.text)+len(data)-len(old)]
	if strings.Count(text, "\n") != strings.Count(seg.c.text, "\n") || strings.HasSuffix(text, "\n") != strings.HasSuffix(seg.c.text, "\n") ||
		!printable(text) || mayHaveAnchorOrTag(text) || !sameEntityLines(seg.c.text, text) {
		return nil, false
	}
	m := &pending{header: seg.c.header, section: seg.c.section, entity: seg.c.entity, text: text}
	m.key = cacheKey{m.section, text}
	c, hit := p.cache[m.key]
	if !hit {
		c = p.parseAlone(m, env)
	}
	if c.bad {
		return nil, false
	}
	c.used = p.gen
	next := segment{c: c, line: seg.line}
	na := &assembly{sections: a.sections, whole: a.whole, entities: make(map[string]map[string]segment, len(a.entities)),
		patch: &patchInfo{base: a.hash, section: m.section, entity: m.entity}}
	for sec, ents := range a.entities {
		na.entities[sec] = ents
	}
	ents := make(map[string]segment, len(a.entities[m.section]))
	for name, s := range a.entities[m.section] {
		ents[name] = s
	}
	ents[m.entity] = next
	na.entities[m.section] = ents
	na.segments = append([]segment(nil), a.segments...)
	na.segments[i] = next
	p.patches++
	return na, true
}

// sameEntityLines reports whether text is still one entity as the
// splitter cut it from the document old came from: its first line is the
// same entity key at the same indentation, and every other line is blank,
// a comment, or indented deeper.
func sameEntityLines(old, text string) bool {
	first := func(s string) string {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			return s[:i+1]
		}
		return s
	}
	ol, nl := first(old), first(text)
	k := indentOf(ol)
	if k == 0 || indentOf(nl) != k {
		return false
	}
	on, _, ok1 := keyAt(ol[k:], true, isAlnum)
	nn, _, ok2 := keyAt(nl[k:], true, isAlnum)
	if !ok1 || !ok2 || on != nn {
		return false
	}
	for _, l := range strings.SplitAfter(text[len(nl):], "\n") {
		if l != "" && !blankOrComment(l) && indentOf(l) <= k {
			return false
		}
	}
	return true
}

// commonPrefix is the length of the longest common prefix of a and b,
// compared a block at a time.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i+256 <= n && a[i:i+256] == b[i:i+256] {
		i += 256
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix is the length of the longest common suffix of a and b.
func commonSuffix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i+256 <= n && a[len(a)-i-256:len(a)-i] == b[len(b)-i-256:len(b)-i] {
		i += 256
	}
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}
