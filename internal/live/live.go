// Package live carries what a running task produces before it is saved —
// the model's text as it streams — from the queue worker to whoever in
// this process follows the task (an A2A stream). Nothing here is durable:
// a follower on another instance, or one that joins late, sees the saved
// checkpoints instead.
package live

import "sync"

// Hub fans text out by task. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*Sub]struct{}
}

// Sub is one follower of one task.
type Sub struct {
	hub  *Hub
	task string
	mu   sync.Mutex
	buf  []string
	c    chan struct{} // signalled when buf gains text
}

// Follow subscribes to task's text until Stop.
func (h *Hub) Follow(task string) *Sub {
	s := &Sub{hub: h, task: task, c: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[string]map[*Sub]struct{}{}
	}
	if h.subs[task] == nil {
		h.subs[task] = map[*Sub]struct{}{}
	}
	h.subs[task][s] = struct{}{}
	return s
}

// Followed reports whether anyone follows task, so a worker streams the
// model's text only when someone reads it.
func (h *Hub) Followed(task string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[task]) > 0
}

// Publish hands text to task's followers. It never blocks: a follower's
// text queues until it takes it.
func (h *Hub) Publish(task, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[task] {
		s.mu.Lock()
		s.buf = append(s.buf, text)
		s.mu.Unlock()
		select {
		case s.c <- struct{}{}:
		default:
		}
	}
}

// Ready is signalled when Take has text.
func (s *Sub) Ready() <-chan struct{} { return s.c }

// Take returns the text published since the last Take, in order.
func (s *Sub) Take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.buf
	s.buf = nil
	return out
}

// Stop ends the subscription.
func (s *Sub) Stop() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.task], s)
	if len(h.subs[s.task]) == 0 {
		delete(h.subs, s.task)
	}
}
