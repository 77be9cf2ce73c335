// Package source reads configuration documents from where they live and
// watches them for changes. A source only fetches and watches; parsing,
// validating and applying happen in the reconciler.
package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/hector-run/hector/internal/config"
)

// ErrNotFound is a read of a key or document that does not exist in a
// key-value or database backend. (The file source reports fs.ErrNotExist,
// which the reconciler treats as a save in progress.)
var ErrNotFound = errors.New("not found")

// Revision is one read of a source: the raw document, its content hash and
// where it came from. Err is set when the read failed; the running
// configuration is then kept.
type Revision struct {
	Data   []byte
	Hash   string
	Source string
	Err    error
}

// NewRevision fills Hash from data.
func NewRevision(source string, data []byte) Revision {
	return Revision{Data: data, Hash: config.Hash(data), Source: source}
}

// DefaultMaxBytes is the largest document a source reads when its MaxBytes
// is 0 (--config-max-bytes).
const DefaultMaxBytes = 4 << 20

// TooLargeError is a document over the size limit. It is not read: the
// running configuration keeps serving, and the error names both sizes.
type TooLargeError struct {
	Source      string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: the configuration document is %d bytes, over the limit of %d bytes (--config-max-bytes)", e.Source, e.Size, e.Limit)
}

// limit returns max, or DefaultMaxBytes when max is 0 or less.
func limit(max int64) int64 {
	if max <= 0 {
		return DefaultMaxBytes
	}
	return max
}

// CheckSize returns a *TooLargeError when size exceeds max (0: the default).
func CheckSize(source string, size, max int64) error {
	if l := limit(max); size > l {
		return &TooLargeError{Source: source, Size: size, Limit: l}
	}
	return nil
}

// sized is NewRevision for a source whose documents are limited to max
// bytes: a larger document is a read error.
func sized(source string, data []byte, max int64) Revision {
	if err := CheckSize(source, int64(len(data)), max); err != nil {
		return Revision{Source: source, Err: err}
	}
	return NewRevision(source, data)
}

// Source is where a configuration document lives.
type Source interface {
	// Name identifies the source in outcomes, logs and /health ("file:PATH").
	Name() string
	// Load reads the document now.
	Load(ctx context.Context) Revision
	// Watch calls notify with a fresh read once the watch is established and
	// then each time the document may have changed, until ctx ends; it
	// returns ctx's error or a setup failure. notify must not block; it may
	// be called with unchanged content. The reconciler treats a successful
	// read as a hint and loads the document again before applying, so a
	// read that predates its own write-back is never applied.
	Watch(ctx context.Context, notify func(Revision)) error
}

// Writer is a source that can store a document, so API edits and rollbacks
// reach the source of truth.
type Writer interface {
	Write(data []byte) error
}
