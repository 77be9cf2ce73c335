// Package source reads configuration documents from where they live and
// watches them for changes. A source only fetches and watches; parsing,
// validating and applying happen in the reconciler.
package source

import (
	"context"
	"errors"

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
