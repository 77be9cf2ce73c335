package a2ahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/hector-run/hector/internal/netguard"
	"github.com/hector-run/hector/internal/store"
)

// Delivery of push notifications. One loop per process finds the webhooks
// whose task changed state since they were last told, claims each state
// in the database (so one instance sends it) and hands the POST to a
// bounded pool: PushWorkers deliveries in flight, each attempt limited to
// PushAttemptTimeout, PushAttempts attempts. A webhook that never answers
// holds one worker for at most PushAttempts×PushAttemptTimeout and delays
// no other webhook while workers are free. One webhook of one task has at
// most one delivery in flight, so it sees that task's states in the order
// they happened; states that change while a delivery is in flight
// coalesce into the newest, sent when it ends.

const (
	// PushWorkers is how many push deliveries run at once.
	PushWorkers = 16
	// PushAttempts is how many times a notification is tried.
	PushAttempts = 3
	// PushAttemptTimeout bounds one attempt: connect, send, response.
	PushAttemptTimeout = 10 * time.Second
)

type pushKey struct{ task, config string }

// pusher runs deliveries: at most PushWorkers, one per key.
type pusher struct {
	slots chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	inflight map[pushKey]bool
}

func newPusher() *pusher {
	return &pusher{slots: make(chan struct{}, PushWorkers), inflight: map[pushKey]bool{}}
}

// begin reserves a worker for key: false when key has a delivery in
// flight or every worker is busy.
func (p *pusher) begin(key pushKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight[key] {
		return false
	}
	select {
	case p.slots <- struct{}{}:
	default:
		return false
	}
	p.inflight[key] = true
	return true
}

// abandon gives back a worker begin reserved without running anything.
func (p *pusher) abandon(key pushKey) {
	p.mu.Lock()
	delete(p.inflight, key)
	p.mu.Unlock()
	<-p.slots
}

// run runs f on the worker begin reserved for key, then frees it and
// calls done.
func (p *pusher) run(key pushKey, f, done func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
		p.abandon(key)
		done()
	}()
}

func (p *pusher) full() bool { return len(p.slots) == cap(p.slots) }

// deliver runs until ctx ends, sending every unsent state of a task to
// its webhooks; it returns once the deliveries in flight have ended.
func (s *Service) deliver(ctx context.Context) {
	guarded, open := newPushSender(true), newPushSender(false)
	p := newPusher()
	defer p.wg.Wait()
	var w follower
	defer w.close()
	tick := time.NewTicker(s.pollInterval())
	defer tick.Stop()
	for ctx.Err() == nil {
		snap, release := s.Runtime.Acquire()
		if snap == nil {
			release()
			return
		}
		w.follow(snap.Store, (*store.Store).WatchTasks)
		// The policy of the moment: a webhook registered while private
		// networks were allowed is refused at dial once they are not.
		sender := guarded
		if snap.Config.A2A.Push.AllowPrivateNetworks {
			sender = open
		}
		s.sendPending(ctx, snap.Store, sender, p)
		release()
		// Changes that come in a burst are looked at together: at most
		// one scan per 20ms, whatever the task traffic.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		select {
		case <-ctx.Done():
		case <-w.changes:
		case <-s.pushWake: // a registration, or a delivery that ended
		case <-tick.C:
		}
	}
}

// sendPending claims the unsent states it has workers for and starts
// their deliveries. A webhook with a delivery in flight waits for the
// next scan, which the end of that delivery triggers.
func (s *Service) sendPending(ctx context.Context, st *store.Store, sender *pushSender, p *pusher) {
	if p.full() {
		return
	}
	pending, err := st.PendingPushes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("a2a push: pending notifications not read", "error", err)
		}
		return
	}
	for i := range pending {
		pc := &pending[i]
		key := pushKey{pc.TaskID, pc.ID}
		if !p.begin(key) {
			if p.full() {
				return
			}
			continue
		}
		cfg, ev, ok := s.claim(ctx, st, pc)
		if !ok {
			p.abandon(key)
			continue
		}
		p.run(key, func() { s.push(ctx, sender, cfg, ev) }, s.wakePush)
	}
}

// claim reads the task of a pending webhook and claims its state: ok
// means this process sends ev to cfg.
func (s *Service) claim(ctx context.Context, st *store.Store, pc *store.PushConfig) (*a2a.PushConfig, *a2a.TaskStatusUpdateEvent, bool) {
	t, err := st.GetTask(ctx, pc.TaskID)
	if err != nil {
		return nil, nil, false
	}
	// The state claimed is the state read, so the event sent is the
	// state recorded as sent.
	claimed, err := st.ClaimPush(ctx, pc.TaskID, pc.ID, t.State)
	if err != nil || !claimed {
		return nil, nil, false
	}
	cfg, err := decodePushConfig(pc) // after the claim: a bad config is not tried again
	if err != nil {
		s.Log.Warn("a2a push: bad config", "task", pc.TaskID, "error", err)
		return nil, nil, false
	}
	return cfg, &a2a.TaskStatusUpdateEvent{TaskID: a2a.TaskID(t.ID), ContextID: t.SessionID, Status: status(t)}, true
}

// push sends ev to cfg, PushAttempts times at most, and reports the
// outcome.
func (s *Service) push(ctx context.Context, sender *pushSender, cfg *a2a.PushConfig, ev *a2a.TaskStatusUpdateEvent) {
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, PushAttemptTimeout)
		err = sender.send(actx, cfg, ev)
		cancel()
		if err == nil || attempt == PushAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		s.Log.Warn("a2a push: notification not delivered", "task", ev.TaskID, "config", cfg.ID, "state", ev.Status.State, "error", err)
	}
	if s.OnPush != nil {
		s.OnPush(err == nil)
	}
}

// pushSender POSTs events to webhooks as a2a-go's push.HTTPPushSender
// does (the event as a StreamResponse, the config's token in
// A2A-Notification-Token, its credentials in Authorization), through a
// dialer that, when guarded, refuses special-purpose addresses
// (netguard.Control) on every connection. The SDK's sender cannot be
// given a dialer, and its own guard misses most of those ranges.
//
// No proxy is used (a proxy's address is what the guard would check, not
// the webhook's), and redirects are not followed: a 3xx answer is a
// failed delivery.
type pushSender struct{ client *http.Client }

func newPushSender(guarded bool) *pushSender {
	d := &net.Dialer{Timeout: PushAttemptTimeout, KeepAlive: 30 * time.Second}
	if guarded {
		d = netguard.Dialer(PushAttemptTimeout)
	}
	t := &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   PushAttemptTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &pushSender{client: &http.Client{Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (ps *pushSender) send(ctx context.Context, cfg *a2a.PushConfig, ev a2a.Event) error {
	body, err := json.Marshal(a2a.StreamResponse{Event: ev})
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Token != "" {
		req.Header.Set("A2A-Notification-Token", cfg.Token)
	}
	if a := cfg.Auth; a != nil && a.Credentials != "" {
		switch strings.ToLower(a.Scheme) {
		case "bearer":
			req.Header.Set("Authorization", "Bearer "+a.Credentials)
		case "basic":
			req.Header.Set("Authorization", "Basic "+a.Credentials)
		}
	}
	resp, err := ps.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
