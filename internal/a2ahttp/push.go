package a2ahttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv/push"

	"github.com/hector-run/hector/internal/runtime"
	"github.com/hector-run/hector/internal/store"
)

// Push notifications: a client registers a webhook for a task (with the
// message that starts it, or later), and every change of the task's A2A
// state is POSTed to it as a status update. The webhook's last announced
// state is stored with it, and an instance claims a state before sending
// it, so each state is sent once however many instances watch the task.
//
// Webhooks are a server-side request forgery risk: unless
// a2a.push.allow_private_networks is set, a URL whose host is or resolves
// to a loopback, private, link-local or unspecified address is refused
// when registered, and the sender's dialer refuses such addresses again
// at delivery (so a DNS answer that changes in between does not get
// through).

func (h handler) CreateTaskPushConfig(ctx context.Context, req *a2a.PushConfig) (*a2a.PushConfig, error) {
	if _, _, err := h.s.load(ctx, req.TaskID); err != nil {
		return nil, err
	}
	var out *a2a.PushConfig
	err := h.s.pinned(func(snap *runtime.Snapshot) error {
		var err error
		out, err = h.s.savePushConfig(ctx, snap, req)
		return err
	})
	return out, err
}

func (h handler) GetTaskPushConfig(ctx context.Context, req *a2a.GetTaskPushConfigRequest) (*a2a.PushConfig, error) {
	if _, _, err := h.s.load(ctx, req.TaskID); err != nil {
		return nil, err
	}
	var out *a2a.PushConfig
	err := h.s.pinned(func(snap *runtime.Snapshot) error {
		c, err := snap.Store.PushConfig(ctx, string(req.TaskID), req.ID)
		if errors.Is(err, store.ErrNotFound) {
			return a2a.NewError(a2a.ErrTaskNotFound, fmt.Sprintf("task %s has no push notification config %q", req.TaskID, req.ID))
		}
		if err != nil {
			return h.s.internal("load push config", err)
		}
		out, err = decodePushConfig(c)
		return err
	})
	return out, err
}

func (h handler) ListTaskPushConfigs(ctx context.Context, req *a2a.ListTaskPushConfigRequest) (*a2a.ListTaskPushConfigResponse, error) {
	if _, _, err := h.s.load(ctx, req.TaskID); err != nil {
		return nil, err
	}
	resp := &a2a.ListTaskPushConfigResponse{Configs: []*a2a.PushConfig{}}
	err := h.s.pinned(func(snap *runtime.Snapshot) error {
		cs, err := snap.Store.PushConfigs(ctx, string(req.TaskID))
		if err != nil {
			return h.s.internal("list push configs", err)
		}
		for i := range cs {
			c, err := decodePushConfig(&cs[i])
			if err != nil {
				return err
			}
			resp.Configs = append(resp.Configs, c)
		}
		return nil
	})
	return resp, err
}

func (h handler) DeleteTaskPushConfig(ctx context.Context, req *a2a.DeleteTaskPushConfigRequest) error {
	if _, _, err := h.s.load(ctx, req.TaskID); err != nil {
		return err
	}
	return h.s.pinned(func(snap *runtime.Snapshot) error {
		err := snap.Store.DeletePushConfig(ctx, string(req.TaskID), req.ID)
		if errors.Is(err, store.ErrNotFound) {
			return a2a.NewError(a2a.ErrTaskNotFound, fmt.Sprintf("task %s has no push notification config %q", req.TaskID, req.ID))
		}
		if err != nil {
			return h.s.internal("delete push config", err)
		}
		return nil
	})
}

func decodePushConfig(c *store.PushConfig) (*a2a.PushConfig, error) {
	var pc a2a.PushConfig
	if err := json.Unmarshal([]byte(c.Config), &pc); err != nil {
		return nil, fmt.Errorf("push config %s of task %s: %w", c.ID, c.TaskID, err)
	}
	return &pc, nil
}

// savePushConfig checks a webhook and stores it; the ID defaults to
// "default".
func (s *Service) savePushConfig(ctx context.Context, snap *runtime.Snapshot, pc *a2a.PushConfig) (*a2a.PushConfig, error) {
	if err := checkWebhook(ctx, pc.URL, snap.Config.A2A.Push.AllowPrivateNetworks); err != nil {
		return nil, err
	}
	out := *pc
	if out.ID == "" {
		out.ID = "default"
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, s.internal("encode push config", err)
	}
	if err := snap.Store.SavePushConfig(ctx, string(out.TaskID), out.ID, string(b)); err != nil {
		return nil, s.internal("save push config", err)
	}
	s.wakePush()
	return &out, nil
}

// checkWebhook refuses a URL that is not http(s), or whose host is or
// resolves to an address inside the network unless that is allowed.
func checkWebhook(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pushNotificationConfig.url: %q is not an http(s) URL", raw))
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(rctx, host)
		if err != nil {
			return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pushNotificationConfig.url: cannot resolve %s: %v", host, err))
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if blocked(ip) {
			return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf(
				"pushNotificationConfig.url: %s is %s, a loopback, private or link-local address; webhooks inside the network need a2a.push.allow_private_networks: true", host, ip))
		}
	}
	return nil
}

func blocked(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast()
}

func (s *Service) wakePush() {
	select {
	case s.pushWake <- struct{}{}:
	default:
	}
}

// deliver runs until ctx ends, sending every unsent state of a task to
// its webhooks.
func (s *Service) deliver(ctx context.Context) {
	// FailOnError: the sender reports failures (else it logs and says nil),
	// so they are retried and counted.
	guarded := push.NewHTTPPushSender(&push.HTTPSenderConfig{Timeout: 10 * time.Second, FailOnError: true})
	open := push.NewHTTPPushSender(&push.HTTPSenderConfig{Timeout: 10 * time.Second, AllowPrivateNetworks: true, FailOnError: true})
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
		sender := guarded
		if snap.Config.A2A.Push.AllowPrivateNetworks {
			sender = open
		}
		s.sendPending(ctx, snap.Store, sender)
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
		case <-s.pushWake:
		case <-tick.C:
		}
	}
}

func (s *Service) sendPending(ctx context.Context, st *store.Store, sender *push.HTTPPushSender) {
	pending, err := st.PendingPushes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("a2a push: pending notifications not read", "error", err)
		}
		return
	}
	for _, p := range pending {
		claimed, err := st.ClaimPush(ctx, p.TaskID, p.ID, p.SentState)
		if err != nil || !claimed {
			continue
		}
		t, err := st.GetTask(ctx, p.TaskID)
		if err != nil {
			continue
		}
		pc, err := decodePushConfig(&p)
		if err != nil {
			s.Log.Warn("a2a push: bad config", "task", p.TaskID, "error", err)
			continue
		}
		ev := &a2a.TaskStatusUpdateEvent{TaskID: a2a.TaskID(t.ID), ContextID: t.SessionID, Status: status(t)}
		// In order, one at a time: a webhook sees states in the order they
		// happened (states between two looks coalesce into the newer).
		for attempt := 1; ; attempt++ {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := sender.SendPush(sctx, pc, ev)
			cancel()
			if err == nil || attempt == 3 || ctx.Err() != nil {
				if err != nil {
					s.Log.Warn("a2a push: notification not delivered", "task", t.ID, "config", pc.ID, "state", ev.Status.State, "error", err)
				}
				if s.OnPush != nil {
					s.OnPush(err == nil)
				}
				break
			}
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
	}
}
