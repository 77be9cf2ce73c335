package apps

import (
	"context"
	"sync"

	"github.com/hector-run/hector/internal/config/source"
)

// appSource is one app's document as a source.Source for its reconciler.
// It does not watch the backend itself: the registry's one catalog watch
// hands it the app's revisions (feed), so a thousand apps cost one watch.
// Writes go to the catalog, so API edits and rollbacks of an app reach
// its backend like the main document's do.
type appSource struct {
	cat  source.Catalog
	name string

	mu     sync.Mutex
	notify func(source.Revision) // of the running Watch; nil when none
}

var _ source.Writer = (*appSource)(nil)

func (s *appSource) Name() string { return s.cat.AppSource(s.name) }

func (s *appSource) Load(ctx context.Context) source.Revision { return s.cat.Load(ctx, s.name) }

// Watch reports a fresh read, then every revision the registry feeds,
// until ctx ends.
func (s *appSource) Watch(ctx context.Context, notify func(source.Revision)) error {
	s.mu.Lock()
	s.notify = notify
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.notify = nil
		s.mu.Unlock()
	}()
	notify(s.Load(ctx))
	<-ctx.Done()
	return ctx.Err()
}

// feed passes a revision of the catalog watch to the running Watch, if
// any (the reconciler reads the document again before applying it).
func (s *appSource) feed(rev source.Revision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notify != nil {
		s.notify(rev)
	}
}

// Write implements source.Writer.
func (s *appSource) Write(data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return s.cat.Put(ctx, s.name, data)
}
