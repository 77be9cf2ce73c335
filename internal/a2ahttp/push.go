package a2ahttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/netguard"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Push notifications: a client registers a webhook for a task (with the
// message that starts it, or later), and every change of the task's A2A
// state is POSTed to it as a status update (see deliver.go).
//
// Webhooks are a server-side request forgery risk: unless
// a2a.push.allow_private_networks is set, a URL whose host is or resolves
// to an address of an IANA special-purpose range (loopback, private,
// shared, link-local, benchmarking, reserved, NAT64 …: netguard.Special)
// is refused when registered, and the sender's dialer refuses such
// addresses again at delivery (so a DNS answer that changes in between
// does not get through). A task takes at most MaxPushConfigsPerTask
// webhooks, and one caller keeps at most MaxPushConfigsPerCaller on
// unfinished tasks.

const (
	// MaxPushConfigsPerTask is how many webhooks one task takes.
	MaxPushConfigsPerTask = 10
	// MaxPushConfigsPerCaller is how many webhooks one caller (API key
	// name, or "anonymous") keeps on tasks that are not finished.
	MaxPushConfigsPerCaller = 100
)

func (h handler) CreateTaskPushConfig(ctx context.Context, req *a2a.PushConfig) (*a2a.PushConfig, error) {
	if _, _, err := h.s.read(ctx, req.TaskID, false); err != nil {
		return nil, err
	}
	var out *a2a.PushConfig
	err := h.s.pinned(func(snap *snapshot.Snapshot) error {
		var err error
		out, err = h.s.savePushConfig(ctx, snap, req)
		return err
	})
	return out, err
}

func (h handler) GetTaskPushConfig(ctx context.Context, req *a2a.GetTaskPushConfigRequest) (*a2a.PushConfig, error) {
	if _, _, err := h.s.read(ctx, req.TaskID, false); err != nil {
		return nil, err
	}
	var out *a2a.PushConfig
	err := h.s.pinned(func(snap *snapshot.Snapshot) error {
		c, err := snap.Store.PushConfig(ctx, string(req.TaskID), req.ID)
		if errors.Is(err, store.ErrNotFound) {
			return a2a.NewError(a2a.ErrTaskNotFound, fmt.Sprintf("task %s has no push notification config %q", req.TaskID, req.ID))
		}
		if err != nil {
			return h.s.internal("load push config", err)
		}
		out, err = shownPushConfig(ctx, c)
		return err
	})
	return out, err
}

// shownPushConfig is a stored webhook as a caller may see it: its token
// and credentials are the registrant's secrets, REDACTED for anyone else.
func shownPushConfig(ctx context.Context, c *store.PushConfig) (*a2a.PushConfig, error) {
	pc, err := decodePushConfig(c)
	if err != nil || c.Owner == "" || c.Owner == callerFrom(ctx).Name {
		return pc, err
	}
	if pc.Token != "" {
		pc.Token = config.Redacted
	}
	if pc.Auth != nil && pc.Auth.Credentials != "" {
		auth := *pc.Auth
		auth.Credentials = config.Redacted
		pc.Auth = &auth
	}
	return pc, nil
}

func (h handler) ListTaskPushConfigs(ctx context.Context, req *a2a.ListTaskPushConfigRequest) (*a2a.ListTaskPushConfigResponse, error) {
	if _, _, err := h.s.read(ctx, req.TaskID, false); err != nil {
		return nil, err
	}
	resp := &a2a.ListTaskPushConfigResponse{Configs: []*a2a.PushConfig{}}
	err := h.s.pinned(func(snap *snapshot.Snapshot) error {
		cs, err := snap.Store.PushConfigs(ctx, string(req.TaskID))
		if err != nil {
			return h.s.internal("list push configs", err)
		}
		for i := range cs {
			c, err := shownPushConfig(ctx, &cs[i])
			if err != nil {
				return err
			}
			resp.Configs = append(resp.Configs, c)
		}
		return nil
	})
	return resp, err
}

// DeleteTaskPushConfig removes a webhook. It is idempotent, as A2A 1.0
// asks: deleting a config the task does not have succeeds. The task must
// exist.
func (h handler) DeleteTaskPushConfig(ctx context.Context, req *a2a.DeleteTaskPushConfigRequest) error {
	if _, _, err := h.s.read(ctx, req.TaskID, false); err != nil {
		return err
	}
	return h.s.pinned(func(snap *snapshot.Snapshot) error {
		err := snap.Store.DeletePushConfigFor(ctx, string(req.TaskID), req.ID, callerFrom(ctx).Name)
		if errors.Is(err, store.ErrOwned) {
			return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("push notification config %q of task %s was registered by another caller", req.ID, req.TaskID))
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
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

// savePushConfig checks a webhook and stores it for the caller; the ID
// defaults to "default". Errors are protocol errors: invalid params for a
// refused URL or a limit reached.
func (s *Service) savePushConfig(ctx context.Context, snap *snapshot.Snapshot, pc *a2a.PushConfig) (*a2a.PushConfig, error) {
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
	lim := store.PushLimits{PerTask: MaxPushConfigsPerTask, PerOwner: MaxPushConfigsPerCaller}
	err = snap.Store.SavePushConfigFor(ctx, string(out.TaskID), out.ID, callerFrom(ctx).Name, string(b), lim)
	if errors.Is(err, store.ErrOwned) {
		return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pushNotificationConfig.id: %q of task %s was registered by another caller; choose another id", out.ID, out.TaskID))
	}
	var le *store.PushLimitError
	if errors.As(err, &le) {
		if le.PerTask {
			return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf(
				"pushNotificationConfig: task %s already has %d push notification configs, the limit per task; delete one or reuse its id", out.TaskID, le.Limit))
		}
		return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf(
			"pushNotificationConfig: caller %s already has %d push notification configs on unfinished tasks, the limit per caller; delete some first", callerFrom(ctx).Name, le.Limit))
	}
	if err != nil {
		return nil, s.internal("save push config", err)
	}
	s.wakePush()
	return &out, nil
}

// checkWebhook refuses a URL that is not http(s), or whose host is or
// resolves to a special-purpose address (netguard) unless allowPrivate.
func checkWebhook(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pushNotificationConfig.url: %q is not an http(s) URL", raw))
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	err = netguard.Resolve(ctx, host)
	var ne *netguard.Error
	switch {
	case errors.As(err, &ne):
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf(
			"pushNotificationConfig.url: %s is %s, a %s address; webhooks inside the network need a2a.push.allow_private_networks: true", host, ne.Addr, ne.Kind))
	case err != nil:
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pushNotificationConfig.url: %v", err))
	}
	return nil
}

func (s *Service) wakePush() {
	select {
	case s.pushWake <- struct{}{}:
	default:
	}
}
