package config

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Error is one problem in a configuration document: the field path, where it
// was written (0 when the field is absent and has no parent position), and
// what is wrong.
type Error struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	// warn marks a normalisation's warning while it travels with the
	// decode errors (decoder.done); finish parts the two.
	warn bool
}

func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s: %s", e.Line, e.Column, e.Path, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Message)
}

// Errors is every problem found in one document, in source order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Bounds on what one document can make Hector report: a document of
// aliases can expand into a million errors, and one huge key into a huge
// message. Responses, logs, outcomes and events all carry these errors.
const (
	MaxErrors       = 100   // errors (or warnings) reported per document
	maxDecodeErrors = 10000 // errors the decoder collects before it stops counting
	maxMessageBytes = 1000  // bytes of one message
	maxPathBytes    = 300   // bytes of one path
)

// sorted puts es in source order and bounds it: the first MaxErrors, then
// one "and N more" entry; each message and path cut to a bounded length.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	if len(es) > MaxErrors {
		more := len(es) - MaxErrors
		es = append(es[:MaxErrors:MaxErrors], Error{Path: "(document)",
			Message: fmt.Sprintf("and %d more (only the first %d are reported)", more, MaxErrors)})
	}
	for i := range es {
		es[i].Message = truncate(es[i].Message, maxMessageBytes)
		es[i].Path = truncate(es[i].Path, maxPathBytes)
	}
	return es
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes cut)", len(s)-cut)
}
