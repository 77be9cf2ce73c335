package queue

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen wakes idle workers when PostgreSQL announces a runnable task
// (channel hector_tasks, sent by a trigger on every insert or update that
// leaves a task pending), so a task created or retried on another
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
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, url)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN hector_tasks")
	}
	cancel()
	if err != nil {
		if conn != nil {
			conn.Close(context.Background())
		}
		return err
	}
	defer conn.Close(context.Background())
	q.Wake() // anything announced while not listening
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			q.Wake()
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		case q.databaseURL() != url:
			return errMoved
		default: // quiet for 5s: check the connection
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
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
