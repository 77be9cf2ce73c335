package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/pg"
)

// Watching tasks. Every write this process makes to a task (its state, a
// checkpoint, a decision) signals the watchers of that task and the
// watchers of all tasks. On PostgreSQL a trigger announces the writes of
// every instance (channel hector_task_events), and the store forwards
// them, so a watcher here follows a task that another instance runs.
// SQLite has no notifications: a watcher also re-reads on a timer of its
// own (see Watch's contract).

// watchers fans change signals out. Signals coalesce: a channel holds at
// most one, so a slow watcher re-reads once for many changes.
type watchers struct {
	mu     sync.Mutex
	byTask map[string]map[chan struct{}]struct{}
	all    map[chan struct{}]struct{}
	listen sync.Once // PostgreSQL: forward notifications from the first watch on
	stop   context.CancelFunc
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// changed signals the watchers of task id, and those of all tasks.
func (s *Store) changed(id string) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.byTask[id] {
		signal(ch)
	}
	for ch := range w.all {
		signal(ch)
	}
}

// WatchTask returns a channel that receives a signal after task id
// changes, and a function that stops the watch. A signal means "read the
// task again"; several changes may arrive as one. Changes written by
// other processes on SQLite are not signalled, so a watcher that must see
// them also re-reads periodically.
func (s *Store) WatchTask(id string) (<-chan struct{}, func()) {
	return s.addWatch(id)
}

// WatchCancel returns a channel that receives a signal when cancellation
// of task id is requested, here or (on PostgreSQL) on another instance.
func (s *Store) WatchCancel(id string) (<-chan struct{}, func()) {
	return s.addWatch(cancelKey + id)
}

const cancelKey = "cancel:"

// pendingPrefix marks the announcement of a runnable task.
const pendingPrefix = "pending:"

// TaskEvents is the PostgreSQL channel on which every task state change
// is announced (see migration 0006): "pending:ID" for a runnable task,
// "ID" for another state, "cancel:ID" for a cancel request.
const TaskEvents = "hector_task_events"

// runnableKey is the watch key of WatchRunnable.
const runnableKey = pendingPrefix

// WatchRunnable returns a channel that receives a signal when another
// instance (on PostgreSQL) makes a task runnable, and after the store
// (re)connects to the announcements, since some may have been missed.
// This process's own runnable tasks are not signalled here: whoever
// makes one wakes its queue directly.
func (s *Store) WatchRunnable() (<-chan struct{}, func()) {
	return s.addWatch(runnableKey)
}

// WatchTasks is WatchTask for every task.
func (s *Store) WatchTasks() (<-chan struct{}, func()) {
	return s.addWatch("")
}

func (s *Store) addWatch(id string) (<-chan struct{}, func()) {
	w := &s.watch
	if s.pg {
		w.listen.Do(s.startListening)
	}
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if id == "" {
		if w.all == nil {
			w.all = map[chan struct{}]struct{}{}
		}
		w.all[ch] = struct{}{}
	} else {
		if w.byTask == nil {
			w.byTask = map[string]map[chan struct{}]struct{}{}
		}
		if w.byTask[id] == nil {
			w.byTask[id] = map[chan struct{}]struct{}{}
		}
		w.byTask[id][ch] = struct{}{}
	}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if id == "" {
			delete(w.all, ch)
			return
		}
		delete(w.byTask[id], ch)
		if len(w.byTask[id]) == 0 {
			delete(w.byTask, id)
		}
	}
}

// startListening forwards hector_task_events until Close, reconnecting
// with backoff. After each (re)connect every watcher is signalled, since
// changes may have been missed while disconnected.
func (s *Store) startListening() {
	ctx, cancel := context.WithCancel(context.Background())
	s.watch.mu.Lock()
	s.watch.stop = cancel
	s.watch.mu.Unlock()
	go func() {
		backoff := 100 * time.Millisecond
		lost := false // logged once per outage, and its end once
		for ctx.Err() == nil {
			err := pg.Listen(ctx, s.url, TaskEvents, func() error {
				backoff = 100 * time.Millisecond
				if lost {
					lost = false
					s.log.Info("task event listener reconnected")
				}
				s.changedAll()
				return nil
			}, func(payload string) error {
				if id, ok := strings.CutPrefix(payload, pendingPrefix); ok {
					s.changed(runnableKey)
					payload = id
				}
				s.changed(payload)
				return nil
			}, nil)
			if ctx.Err() == nil && !lost {
				lost = true
				s.log.Warn("task event listener lost; reconnecting (until it is back, workers and streams on this instance see other instances' changes only at their poll)",
					"error", config.RedactText(fmt.Sprint(err)))
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

func (s *Store) changedAll() {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, chs := range w.byTask {
		for ch := range chs {
			signal(ch)
		}
	}
	for ch := range w.all {
		signal(ch)
	}
}

func (s *Store) stopWatching() {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.stop != nil {
		s.watch.stop()
	}
}
