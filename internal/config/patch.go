package config

import (
	"strings"
)

// maxPatches bounds the documents patched in a row; the next one is split
// in full, which also evicts the chunks no longer used.
const maxPatches = 64

// patch handles the common edit, a change inside one entity that keeps its
// name and its number of lines, without splitting the whole document: the
// new text is compared with the last document's (common prefix and
// suffix), and only the entity that holds the difference is parsed. Every
// other segment, and the line of each, is the last document's. It reports
// false, changing nothing, for any other edit; split then does the work.
// p.mu must be held. On success the changed entity's chunk is cached and the
// patch counted; p.last still names the base, for the caller to replace.
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
