package queue

import (
	"context"
	"time"

	"github.com/hector-run/hector/internal/store"
)

// listen wakes idle workers when the store hears of a task made runnable
// by another instance (store.WatchRunnable: PostgreSQL announces every
// task left pending), so it starts at once rather than at the next poll.
// It follows the store of the current configuration until ctx ends;
// SQLite announces nothing, and polling covers it.
func (q *Queue) listen(ctx context.Context) {
	var watched *store.Store
	var runnable <-chan struct{}
	stop := func() {}
	defer func() { stop() }()
	for {
		snap, release := q.Runtime.Acquire()
		if snap == nil {
			release()
			return
		}
		if snap.Store != watched {
			stop()
			runnable, stop = snap.Store.WatchRunnable()
			watched = snap.Store
		}
		release()
		select {
		case <-ctx.Done():
			return
		case <-runnable:
			q.Wake()
		case <-time.After(5 * time.Second): // the database may have moved
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
