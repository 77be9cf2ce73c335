package queue

import (
	"context"
	"errors"
	"time"

	"github.com/hector-run/hector/internal/pg"
	"github.com/hector-run/hector/internal/store"
)

// listen wakes idle workers when PostgreSQL announces a runnable task
// (store.TaskEvents with a "pending:" payload, sent by a trigger on every
// insert or update that leaves a task pending), so a task created or retried on another
// instance starts at once rather than at the next poll. It follows the
// database of the current configuration, reconnecting with backoff, until
// ctx ends. SQLite has no notifications; polling covers it.
func (q *Queue) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		url := q.databaseURL()
		if url == "" { // SQLite (or shutting down): look again later
			if !sleep(ctx, 5*time.Second) {
				return
			}
			continue
		}
		err := q.listenOn(ctx, url)
		if ctx.Err() != nil {
			return
		}
		q.Log.Warn("task notifications lost; idle workers poll until they return", "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// databaseURL is the current PostgreSQL database, "" for SQLite.
func (q *Queue) databaseURL() string {
	snap, release := q.Runtime.Acquire()
	defer release()
	if snap == nil || !snap.Store.Postgres() {
		return ""
	}
	return snap.Store.URL()
}

var errMoved = errors.New("the database changed")

func (q *Queue) listenOn(ctx context.Context, url string) error {
	wake := func() error { q.Wake(); return nil } // also for anything announced while not listening
	return pg.Listen(ctx, url, store.TaskEvents, wake, func(payload string) error {
		if store.Runnable(payload) {
			q.Wake()
		}
		return nil
	}, func() error {
		if q.databaseURL() != url {
			return errMoved
		}
		return nil
	})
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
