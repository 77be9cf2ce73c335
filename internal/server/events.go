package server

import (
	"sync"

	"github.com/hector-run/hector/internal/reload"
)

// hub fans reload outcomes out to event-stream subscribers. A subscriber
// that falls behind by more than its buffer misses outcomes rather than
// slowing the reconciler.
type hub struct {
	mu   sync.Mutex
	subs map[chan reload.Outcome]struct{}
}

func (h *hub) subscribe() (<-chan reload.Outcome, func()) {
	ch := make(chan reload.Outcome, 64)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan reload.Outcome]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) publish(o reload.Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- o:
		default:
		}
	}
}
