package queue

import (
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
)

// Prepare makes the queue a reload.Applier: the commit of an applied
// configuration puts its queue settings in force (Apply), right after the
// snapshot swap. Preparing checks nothing and holds nothing, so a reload
// rejected at a later step leaves the queue as it was. Before Start the
// settings are only recorded; Start applies the configuration current then.
func (q *Queue) Prepare(_, next *config.Config) (reload.Prepared, error) {
	c := next.Queue
	return reload.Prepared{Commit: func() { q.Apply(c) }}, nil
}
