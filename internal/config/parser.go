package config

import (
	"sync"
	"time"
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
//
// The work is in four places: split.go cuts a document into chunks,
// cache.go resolves each from the cache or by parsing it alone, derive.go
// takes many changed chunks from one whole-document parse, and patch.go
// handles an edit inside one entity without splitting again; assembly.go
// puts the chunks back together as one Config with document positions.
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

// Parse is Parse with reuse of unchanged parts.
func (p *Parser) Parse(data []byte, env LookupEnv, stats *ParseStats) (*Document, Errors) {
	return p.ParseHashed(data, Hash(data), env, stats)
}

// ParseHashed is Parse for a caller that already knows Hash(data), so a
// large document is not hashed again. hash must be Hash(data): it becomes
// Document.Hash and the base that a later patched Document names (see
// Document.PlanFrom). The document and errors are exactly Parse's for data;
// calls are serialised on p's lock, and stats, if not nil, is filled.
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
	baseValid := p.last != nil && p.last.valid && !p.last.sectioned
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
	// A patch of a valid document needs only its changed entity checked,
	// unless the cross-section normalisations changed that document: they
	// run in the full pass.
	if bad, notes := partWarnings(errs); patched && baseValid && bad == nil && validateOne(cfg, doc.pos, a.patch.section, a.patch.entity) {
		doc.accept(cfg, notes)
		a.valid = true
		return scrubEnv(data, env, doc, nil)
	}
	d, errs := finish(doc, cfg, errs)
	a.valid, a.sectioned = errs == nil, d != nil && d.sectioned
	return scrubEnv(data, env, d, errs)
}

// Redact is Redact, reusing the redacted parts of the last parsed document
// when data is that document.
func (p *Parser) Redact(data []byte) ([]byte, error) { return p.RedactLater(data)() }

// RedactLater is Redact in two steps: it takes hold of the last parsed
// document's parts now, cheaply, and the returned function builds the
// redacted text whenever it is called (off a latency-sensitive path), even
// after later parses. The function takes no lock and may run on any
// goroutine: the parts it holds are never changed once parsed.
func (p *Parser) RedactLater(data []byte) func() ([]byte, error) {
	p.mu.Lock()
	a := p.last
	p.mu.Unlock()
	if a == nil || a.data != string(data) { // a compare, not another hash of the document
		return func() ([]byte, error) { return Redact(data) }
	}
	return func() ([]byte, error) { return a.redact(data) }
}
