package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Document is a parsed, defaulted and validated configuration together with
// what it was made from.
type Document struct {
	Config *Config
	Format string // "yaml" or "json"
	Hash   string // sha256 of the raw bytes, hex
	// Warnings are problems that do not stop the document from applying
	// (a command tool that allows a shell), with positions like errors,
	// in source order; nil when there are none.
	Warnings Errors
	// Normalized are the warnings that say an old spelling was read as
	// its canonical form (normalize.go): hector config migrate rewrites
	// the document without them.
	Normalized Errors
	pos        posLookup
	// patch, for a document a Parser patched from the one it parsed
	// before: that document's hash and the one entity whose text differs.
	patch *patchInfo
	// sectioned: the cross-section normalisations changed something, so a
	// patch of this document must take the full pass (Parser).
	sectioned bool
}

type patchInfo struct{ base, section, entity string }

// Patched reports, for a document a Parser derived by patching the
// previous one, that document's hash and the only entity whose text
// differs from it; everything else is byte for byte the same.
func (d *Document) Patched() (base, section, entity string, ok bool) {
	if d.patch == nil {
		return "", "", "", false
	}
	return d.patch.base, d.patch.section, d.patch.entity, true
}

// Pos returns where the field at path ("agents.support.llm") was written.
func (d *Document) Pos(path string) (Pos, bool) { return d.pos(path) }

// Hash returns the content hash used to recognise an unchanged document.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// DetectFormat reports "json" when the document starts with '{', else "yaml".
func DetectFormat(data []byte) string {
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return "json"
	}
	return "yaml"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseStats reports where Parse spent its time.
type ParseStats struct {
	Decode   time.Duration // YAML/JSON to schema types, ${VAR} expansion
	Validate time.Duration // semantic rules and defaults
}

// Parse decodes, expands, defaults and validates a document. It returns every
// problem found; a document with errors must not be applied. env resolves
// ${VAR} references (pass os.LookupEnv).
//
// JSON is parsed by the YAML parser, of which it is a subset, so both formats
// report the same line:column positions.
func Parse(data []byte, env LookupEnv) (*Document, Errors) { return ParseWithStats(data, env, nil) }

// ParseWithStats is Parse that also fills stats when it is not nil.
func ParseWithStats(data []byte, env LookupEnv, stats *ParseStats) (*Document, Errors) {
	if stats == nil {
		stats = &ParseStats{}
	}
	start := time.Now()
	doc := &Document{Format: DetectFormat(data), Hash: Hash(data)}
	raw, serr := parseRaw(data, env)
	if serr != nil {
		return nil, Errors{*serr}
	}
	doc.pos = raw.pos.lookup
	stats.Decode = time.Since(start)
	start = time.Now()
	defer func() { stats.Validate = time.Since(start) }()
	doc, errs := finish(doc, raw.cfg, raw.errs)
	return scrubEnv(data, env, doc, errs)
}

// rawParse is a document decoded but not yet validated or defaulted.
type rawParse struct {
	root yaml.Node
	cfg  *Config
	pos  Positions
	errs Errors
}

// parseRaw decodes data into the schema types, or returns its syntax error.
func parseRaw(data []byte, env LookupEnv) (*rawParse, *Error) {
	raw := &rawParse{cfg: &Config{}}
	if err := yaml.Unmarshal(data, &raw.root); err != nil {
		e := syntaxError(err)
		if flattened(data) {
			e.Line, e.Column = 1, 1
			e.Message = "the document is one line: its newlines were stripped (curl -d does that): upload it with curl --data-binary @FILE or hector config put (" + e.Message + ")"
		}
		return nil, &e
	}
	if len(raw.root.Content) == 0 {
		return nil, &Error{Path: "(document)", Line: 1, Column: 1, Message: "the document is empty"}
	}
	d := &decoder{pos: Positions{}, env: env}
	d.decode(&raw.root, reflectValue(raw.cfg), "")
	raw.pos, raw.errs = d.pos, d.done()
	return raw, nil
}

// finish validates a decoded config, merges in the decode errors and applies
// defaults: the common end of Parse and Parser.Parse.
func finish(doc *Document, cfg *Config, decodeErrs Errors) (*Document, Errors) {
	errs, notes := partWarnings(decodeErrs)
	// A rule about a field that failed to decode only repeats that failure.
	failed := map[string]bool{}
	for _, e := range errs {
		failed[e.Path] = true
	}
	sn := normalizeSections(cfg, doc.pos) // sections.go
	doc.pos, errs, notes = sn.lookup, append(errs, sn.errs...), append(notes, sn.notes...)
	doc.sectioned = len(sn.errs)+len(sn.notes) > 0
	for _, e := range validate(cfg, doc.pos) {
		if !failed[e.Path] {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	doc.accept(cfg, notes)
	return doc, nil
}

// flattened reports whether data looks like a YAML document of several
// lines whose line breaks were removed: one line, not JSON, holding more
// than one "key: value".
func flattened(data []byte) bool {
	s := strings.TrimSpace(string(data))
	return !strings.ContainsAny(s, "\n\r") && !strings.HasPrefix(s, "{") && strings.Count(s, ": ") > 1
}

func syntaxError(err error) Error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	e := Error{Path: "(document)", Message: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column = 1
		e.Message = "syntax error: " + m[2]
	}
	return e
}

// ServerWide are the top-level sections that configure the process rather
// than its agents: the listener and its auth, the database, logging, the
// task queue, the A2A endpoints and observability. Only the main document sets them; an
// app's document may not (see AppErrors).
var ServerWide = []string{"server", "database", "logger", "queue", "a2a", "observability"}

// AppErrors lists, with their positions, the server-wide sections d sets,
// for a document that is an app's: an app has its own agents, tools and
// LLMs but shares the process's listener, database and identity issuers.
func (d *Document) AppErrors() Errors {
	var errs Errors
	for _, section := range ServerWide {
		if p, ok := d.Pos(section); ok {
			errs = append(errs, Error{Path: section, Line: p.Line, Column: p.Col,
				Message: "an app's document may not set " + section + ": it is server-wide, and only the main configuration sets it"})
		}
	}
	return errs
}
