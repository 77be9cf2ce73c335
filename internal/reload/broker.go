package reload

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// NATS subjects of fleet reloads.
const (
	ReloadSubject    = "hector.control.reload"
	ReloadAckSubject = "hector.control.reload.ack"
)

// ReloadRequest is published on ReloadSubject to reload every instance
// listening there.
type ReloadRequest struct {
	CorrelationID string `json:"correlation_id"`
	Actor         string `json:"actor,omitempty"`
}

// ReloadAck is each instance's answer on ReloadAckSubject.
type ReloadAck struct {
	CorrelationID string  `json:"correlation_id"`
	Instance      string  `json:"instance"`
	Outcome       Outcome `json:"outcome"`
}

// StartBroker answers fleet reload requests published on ReloadSubject at
// the NATS server url: each is run as rec.Reload(ctx, TriggerBroker, actor) and
// its outcome published on ReloadAckSubject, naming instance. The connection
// retries in the background when NATS is down at start or later; reloads by
// other triggers keep working meanwhile. A request arriving after ctx ends
// gets no answer (its Reload fails with ctx's error).
//
// It fails only when the URL is unusable or the subscription cannot be made;
// nothing is left open then. On success the caller owns the returned stop
// function and calls it once, to unsubscribe and close the connection.
func StartBroker(ctx context.Context, url, instance string, rec *Reconciler, log *slog.Logger) (func(), error) {
	nc, err := nats.Connect(url, nats.Name("hector "+instance), nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("reload broker disconnected; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reload broker reconnected", "url", url) }))
	if err != nil {
		return nil, fmt.Errorf("reload broker %s: %w", url, err)
	}
	sub, err := nc.Subscribe(ReloadSubject, func(m *nats.Msg) {
		var req ReloadRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || req.CorrelationID == "" {
			log.Warn("ignoring malformed reload request", "subject", m.Subject, "error", err)
			return
		}
		actor := req.Actor
		if actor == "" {
			actor = "broker"
		}
		out, err := rec.Reload(ctx, TriggerBroker, actor)
		if err != nil {
			return // shutting down
		}
		b, _ := json.Marshal(ReloadAck{CorrelationID: req.CorrelationID, Instance: instance, Outcome: out})
		if err := nc.Publish(ReloadAckSubject, b); err != nil {
			log.Warn("reload ack not sent", "error", err)
		}
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reload broker %s: subscribe: %w", url, err)
	}
	_ = nc.Flush()
	log.Info("answering fleet reloads", "url", url, "subject", ReloadSubject, "instance", instance)
	return func() {
		_ = sub.Unsubscribe()
		nc.Close()
	}, nil
}
