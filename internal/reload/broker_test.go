package reload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/hector-run/hector/internal/config"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// These tests use the machine's NATS server (HECTOR_TEST_NATS_URL, default
// nats://127.0.0.1:4222), each on a subject of its own.

func testNATSURL() string {
	if u := os.Getenv("HECTOR_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testKey(t *testing.T, name string) Key {
	return Key{Name: name, Secret: []byte(randomHex(t, 32))}
}

// brokerRig is a running reconciler answering on a subject of its own, and
// a NATS connection to talk to it.
type brokerRig struct {
	t       *testing.T
	h       *harness
	nc      *nats.Conn
	subject string
	acks    chan ReloadAck
	logs    *logBuffer

	mu      sync.Mutex
	refused map[string]int
}

func startBrokerRig(t *testing.T, keys ...Key) *brokerRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("one"))
	r := &brokerRig{t: t, h: start(t, path), subject: "hector.test." + randomHex(t, 8), acks: make(chan ReloadAck, 16),
		logs: &logBuffer{}, refused: map[string]int{}}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	stop, err := StartBroker(context.Background(), BrokerOptions{URL: testNATSURL(), Instance: "i1", Keys: keys, Subject: r.subject,
		Refused: func(reason string) { r.mu.Lock(); r.refused[reason]++; r.mu.Unlock() }}, r.h.rec, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	r.nc, err = nats.Connect(testNATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	verify := AckVerifier(keys, DefaultMaxSkew)
	sub, err := r.nc.Subscribe(r.subject+".ack", func(m *nats.Msg) {
		var a ReloadAck
		if json.Unmarshal(m.Data, &a) == nil {
			if err := verify(m.Header.Get(SignatureHeader), m.Data); err != nil {
				t.Errorf("ack not signed with a configured key: %v", err) // instances sign their acks
			}
			r.acks <- a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// request is a signed (key non-nil) or unsigned request sent at at.
func (r *brokerRig) request(key *Key, corr string, at time.Time) *nats.Msg {
	body, _ := json.Marshal(ReloadRequest{CorrelationID: corr, Actor: "tester"})
	m := &nats.Msg{Subject: r.subject, Data: body, Header: nats.Header{}}
	if key != nil {
		m.Header.Set(SignatureHeader, Sign(*key, body, at))
	}
	return m
}

func (r *brokerRig) publish(m *nats.Msg) {
	r.t.Helper()
	if err := r.nc.PublishMsg(m); err != nil {
		r.t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *brokerRig) ack(corr string) ReloadAck {
	r.t.Helper()
	select {
	case a := <-r.acks:
		if a.CorrelationID != corr {
			r.t.Fatalf("ack for %q, want %q", a.CorrelationID, corr)
		}
		return a
	case <-time.After(5 * time.Second):
		r.t.Fatalf("no ack for %s within 5s", corr)
	}
	return ReloadAck{}
}

// noAck asserts that no ack and no broker-triggered reload come for a while.
func (r *brokerRig) noAck() {
	r.t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case a := <-r.acks:
			r.t.Fatalf("unexpected ack %+v", a)
		case o := <-r.h.outcomes:
			if o.Trigger == TriggerBroker {
				r.t.Fatalf("unexpected broker reload %+v", o)
			}
		case <-deadline:
			return
		}
	}
}

// brokerReloads counts the broker-triggered outcomes seen for a while.
func (r *brokerRig) brokerReloads() int {
	n := 0
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case o := <-r.h.outcomes:
			if o.Trigger == TriggerBroker {
				n++
			}
		case <-deadline:
			return n
		}
	}
}

func (r *brokerRig) refusals(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused[reason]
}

func (r *brokerRig) wantRefused(reason string, n int) {
	r.t.Helper()
	if got := r.refusals(reason); got != n {
		r.t.Fatalf("refused %s: %d, want %d (all: %v)", reason, got, n, r.refused)
	}
	if r.logs.count("ignoring fleet reload request", "reason="+reason) == 0 {
		r.t.Fatalf("no warning for %s:\n%s", reason, r.logs.String())
	}
}

func TestBrokerSignedRequestReloads(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	r.publish(r.request(&k, "c1", time.Now()))
	a := r.ack("c1")
	if a.Outcome.Hash == "" || a.Outcome.Hash == config.Hash([]byte(doc("one"))) {
		t.Errorf("the ack shows the plain hash of the document: %+v", a.Outcome)
	}
	if a.Instance != "i1" || a.Outcome.Trigger != TriggerBroker || a.Outcome.Actor != "broker:ops/tester" || a.Outcome.Result != NoOp {
		t.Fatalf("%+v", a)
	}
	if n := r.brokerReloads(); n != 1 {
		t.Fatalf("%d broker reloads", n)
	}
	if strings.Contains(r.logs.String(), string(k.Secret)) {
		t.Fatal("the key is in the log")
	}
}

func TestBrokerIgnoresUnsignedRequest(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	r.publish(r.request(nil, "c1", time.Now()))
	r.noAck()
	r.wantRefused(RefusedUnsigned, 1)
}

func TestBrokerIgnoresBadSignature(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	other := testKey(t, "ops")
	r.publish(r.request(&other, "c1", time.Now())) // another key
	m := r.request(&k, "c2", time.Now())           // a body changed after signing
	m.Data = []byte(strings.Replace(string(m.Data), "c2", "c3", 1))
	r.publish(m)
	r.noAck()
	r.wantRefused(RefusedBadSignature, 2)
	if strings.Contains(r.logs.String(), string(k.Secret)) || strings.Contains(r.logs.String(), string(other.Secret)) {
		t.Fatal("a key is in the log")
	}
}

func TestBrokerIgnoresReplay(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	m := r.request(&k, "c1", time.Now())
	r.publish(m)
	r.ack("c1")
	if n := r.brokerReloads(); n != 1 {
		t.Fatalf("%d broker reloads", n)
	}
	r.publish(m) // the same nats.Msg, header and all
	r.noAck()
	r.wantRefused(RefusedReplayed, 1)
	// A new signature on the same body is a new request.
	r.publish(r.request(&k, "c1", time.Now().Add(time.Millisecond)))
	r.ack("c1")
}

func TestBrokerIgnoresStaleRequest(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	r.publish(r.request(&k, "c1", time.Now().Add(-2*DefaultMaxSkew)))
	r.publish(r.request(&k, "c2", time.Now().Add(2*DefaultMaxSkew)))
	r.noAck()
	r.wantRefused(RefusedStale, 2)
}

func TestBrokerIgnoresMalformedRequest(t *testing.T) {
	k := testKey(t, "ops")
	r := startBrokerRig(t, k)
	m := r.request(nil, "c1", time.Now())
	m.Header.Set(SignatureHeader, "v1=zz")
	r.publish(m)
	body := []byte("not json")
	m = &nats.Msg{Subject: r.subject, Data: body, Header: nats.Header{}}
	m.Header.Set(SignatureHeader, Sign(k, body, time.Now()))
	r.publish(m)
	r.noAck()
	r.wantRefused(RefusedMalformed, 2)
}

func TestBrokerKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t, "old"), testKey(t, "new")
	r := startBrokerRig(t, oldKey, newKey)
	r.publish(r.request(&oldKey, "c1", time.Now()))
	if a := r.ack("c1"); a.Outcome.Actor != "broker:old/tester" {
		t.Fatalf("%+v", a)
	}
	r.publish(r.request(&newKey, "c2", time.Now()))
	if a := r.ack("c2"); a.Outcome.Actor != "broker:new/tester" {
		t.Fatalf("%+v", a)
	}
}

func TestBrokerNeedsAKeyAndRedactsItsURL(t *testing.T) {
	rec := &Reconciler{}
	log := slog.New(slog.DiscardHandler)
	for _, keys := range [][]Key{nil, {{Name: "short", Secret: []byte("0123456789")}}} {
		_, err := StartBroker(context.Background(), BrokerOptions{URL: "nats://fleet:hunter2-secret@127.0.0.1:4222", Keys: keys}, rec, log)
		if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "0123456789") {
			t.Fatalf("%v", err)
		}
	}
}

func TestBrokerReplayMemoryIsBounded(t *testing.T) {
	k := testKey(t, "ops")
	now := time.Now()
	v := &verifier{keys: []Key{k}, skew: time.Minute, maxReplay: 2, now: func() time.Time { return now }}
	for i, want := range []string{"", "", RefusedReplayed} {
		body := []byte{byte(i)}
		if _, reason, _ := v.check(Sign(k, body, now), body); reason != want {
			t.Fatalf("request %d: %q, want %q", i, reason, want)
		}
	}
	now = now.Add(time.Minute + time.Millisecond) // the first two are stale now, and forgotten
	body := []byte("later")
	if _, reason, _ := v.check(Sign(k, body, now), body); reason != "" || len(v.seen) != 1 {
		t.Fatalf("%q, %d remembered", reason, len(v.seen))
	}
}

func TestBrokerReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	a, b := randomHex(t, 32), randomHex(t, 16)
	path := filepath.Join(dir, "keys")
	if err := os.WriteFile(path, []byte("# fleet keys\n\nnew: "+a+"\n"+b+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, warning, err := ReadKeyFile(path)
	if err != nil || warning != "" || len(keys) != 2 || keys[0].Name != "new" || string(keys[0].Secret) != a ||
		keys[1].Name != "key2" || string(keys[1].Secret) != b {
		t.Fatalf("%v %q %v", keys, warning, err)
	}
	if s := (fmtKeys(keys)); strings.Contains(s, a) || strings.Contains(s, b) {
		t.Fatalf("a key prints its secret: %s", s)
	}
	_ = os.Chmod(path, 0o644)
	if _, warning, err = ReadKeyFile(path); err != nil || !strings.Contains(warning, "chmod 600") {
		t.Fatalf("%q %v", warning, err)
	}
	for content, want := range map[string]string{
		"short-secret-0123\n":             "at least 32",
		"x:" + a + "\nx:" + b + "\n":      "used twice",
		"bad name!:" + a + "\n":           "key name",
		"# nothing\n":                     "no key",
		"ops:" + a[:20] + "\n":            "line 1",
		"\n\nops:" + a + "-x:" + a[:9]:    "",
		"ops:" + a + "\nkey2:" + a + "\n": "",
	} {
		_ = os.WriteFile(path, []byte(content), 0o600)
		_, _, err := ReadKeyFile(path)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", content, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), a[:20]) || strings.Contains(err.Error(), "short-secret") {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}

func fmtKeys(keys []Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.String() + " " + k.GoString() + " ")
	}
	return b.String()
}
