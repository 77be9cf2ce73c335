package reload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hector-run/hector/internal/config"
)

// NATS subjects of fleet reloads.
const (
	ReloadSubject    = "hector.control.reload"
	ReloadAckSubject = "hector.control.reload.ack"
)

// ReloadRequest is published on ReloadSubject to reload every instance
// listening there. It must carry a SignatureHeader made with one of the
// instances' keys (see Sign); anything else is refused.
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

// BrokerOptions configure StartBroker.
type BrokerOptions struct {
	// URL is the NATS server, credentials allowed
	// (nats://user:pass@host:4222); it is redacted in logs and errors.
	URL string
	// Instance names this process in acks.
	Instance string
	// Keys verify requests; at least one, each at least MinKeyBytes long.
	// Any of them is accepted, which is how keys are rotated.
	Keys []Key
	// MaxSkew is how far a request's timestamp may be from this clock,
	// either way; default DefaultMaxSkew. Requests outside are stale.
	MaxSkew time.Duration
	// MaxReplay bounds the signatures remembered within the window against
	// replays; default DefaultMaxReplay. When that many fresh requests were
	// accepted, more are refused until some go stale.
	MaxReplay int
	// Subject is where requests arrive, default ReloadSubject; acks go to
	// Subject + ".ack". Tests use their own.
	Subject string
	// Refused, if set, is called once per refused request with its reason
	// (one of RefusalReasons), for a metric.
	Refused func(reason string)
}

// StartBroker answers signed fleet reload requests published on o.Subject
// (ReloadSubject) at the NATS server o.URL: each is run as
// rec.Reload(ctx, TriggerBroker, actor), actor being "broker:KEY" or
// "broker:KEY/REQUESTER" after the key that signed it, and its outcome is
// published on the ack subject, naming o.Instance. Unsigned, badly signed,
// stale (outside ±o.MaxSkew), replayed and malformed requests get neither
// a reload nor an answer: they are logged at warn (rate limited, without
// key material) and reported to o.Refused. The connection retries in the
// background when NATS is down at start or later; reloads by other
// triggers keep working meanwhile. A request arriving after ctx ends gets
// no answer (its Reload fails with ctx's error).
//
// It fails when o has no usable key, the URL is unusable or the
// subscription cannot be made; nothing is left open then. On success the
// caller owns the returned stop function and calls it once, to unsubscribe
// and close the connection; o.Refused may be called until then.
func StartBroker(ctx context.Context, o BrokerOptions, rec *Reconciler, log *slog.Logger) (func(), error) {
	url := config.RedactURL(o.URL)
	if err := checkKeys(o.Keys); err != nil {
		return nil, fmt.Errorf("reload broker %s: %w", url, err)
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	if o.MaxReplay <= 0 {
		o.MaxReplay = DefaultMaxReplay
	}
	if o.Subject == "" {
		o.Subject = ReloadSubject
	}
	ackSubject := o.Subject + ".ack"
	v := &verifier{keys: o.Keys, skew: o.MaxSkew, maxReplay: o.MaxReplay, now: time.Now}
	warn := &refusalLog{logger: log, last: map[string]time.Time{}, suppressed: map[string]int{}}
	refuse := func(m *nats.Msg, reason, detail string) {
		warn.log(reason, detail, m.Subject, len(m.Data))
		if o.Refused != nil {
			o.Refused(reason)
		}
	}
	nc, err := nats.Connect(o.URL, nats.Name("hector "+o.Instance), nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("reload broker disconnected; reconnecting", "url", url, "error", redactErr(err, o.URL))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reload broker reconnected", "url", url) }))
	if err != nil {
		return nil, fmt.Errorf("reload broker %s: %w", url, redactErr(err, o.URL))
	}
	sub, err := nc.Subscribe(o.Subject, func(m *nats.Msg) {
		key, reason, detail := v.check(m.Header.Get(SignatureHeader), m.Data)
		if reason != "" {
			refuse(m, reason, detail)
			return
		}
		var req ReloadRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || req.CorrelationID == "" {
			refuse(m, RefusedMalformed, "the body is not a reload request with a correlation_id")
			return
		}
		actor := "broker:" + key
		if req.Actor != "" {
			actor += "/" + req.Actor
		}
		out, err := rec.Reload(ctx, TriggerBroker, actor)
		if err != nil {
			return // shutting down
		}
		b, _ := json.Marshal(ReloadAck{CorrelationID: req.CorrelationID, Instance: o.Instance, Outcome: rec.Public(out)})
		ack := &nats.Msg{Subject: ackSubject, Data: b, Header: nats.Header{}}
		ack.Header.Set(SignatureHeader, Sign(keyNamed(o.Keys, key), b, time.Now())) // with the request's key
		if err := nc.PublishMsg(ack); err != nil {
			log.Warn("reload ack not sent", "error", redactErr(err, o.URL))
		}
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reload broker %s: subscribe: %w", url, redactErr(err, o.URL))
	}
	_ = nc.Flush()
	names := make([]string, len(o.Keys))
	for i, k := range o.Keys {
		names[i] = k.Name
	}
	log.Info("answering fleet reloads", "url", url, "subject", o.Subject, "instance", o.Instance, "keys", names, "max_skew", o.MaxSkew)
	return func() {
		_ = sub.Unsubscribe()
		nc.Close()
	}, nil
}

// keyNamed returns the key called name (one check just matched it).
func keyNamed(keys []Key, name string) Key {
	for _, k := range keys {
		if k.Name == name {
			return k
		}
	}
	return Key{}
}

// redactErr keeps a NATS error from carrying the URL's credentials.
func redactErr(err error, url string) error {
	if err == nil || url == config.RedactURL(url) || !strings.Contains(err.Error(), url) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), url, config.RedactURL(url)))
}

// refusalLog logs refused requests at warn, at most once a second per
// reason, counting the ones it held back: a flood of forged messages does
// not flood the log.
type refusalLog struct {
	logger     *slog.Logger
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func (r *refusalLog) log(reason, detail, subject string, size int) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last[reason]) < time.Second {
		r.suppressed[reason]++
		r.mu.Unlock()
		return
	}
	n := r.suppressed[reason]
	r.last[reason], r.suppressed[reason] = now, 0
	r.mu.Unlock()
	r.logger.Warn("ignoring fleet reload request", "reason", reason, "detail", detail, "subject", subject, "bytes", size,
		"suppressed_since_last", n)
}
