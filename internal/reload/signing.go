package reload

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SignatureHeader is the NATS header that authenticates a fleet reload
// request: "t=<unix milliseconds>,v1=<hex HMAC-SHA256>", the HMAC taken
// with a shared key over the ASCII timestamp, a ".", then the exact body
// bytes.
const SignatureHeader = "Hector-Signature"

// MinKeyBytes is the shortest shared key accepted.
const MinKeyBytes = 32

// Defaults of BrokerOptions.
const (
	DefaultMaxSkew   = 60 * time.Second
	DefaultMaxReplay = 10000
)

// Reasons a broker refuses a request, as BrokerOptions.Refused and the
// hector_reload_broker_refused_total metric name them.
const (
	RefusedUnsigned     = "unsigned"      // no signature header
	RefusedBadSignature = "bad_signature" // no configured key made this signature
	RefusedStale        = "stale"         // signed, but its timestamp is outside the window
	RefusedReplayed     = "replayed"      // this exact signed message was already acted on
	RefusedMalformed    = "malformed"     // an unreadable header or body
)

// RefusalReasons lists every reason, for metrics that show zeros.
var RefusalReasons = []string{RefusedUnsigned, RefusedBadSignature, RefusedStale, RefusedReplayed, RefusedMalformed}

// Key is one shared fleet reload key. Its secret never appears in String,
// logs or errors; only its name does.
type Key struct {
	Name   string
	Secret []byte
}

// String is the key's name only.
func (k Key) String() string { return "key " + k.Name }

// GoString keeps %#v from printing the secret.
func (k Key) GoString() string { return "reload.Key{Name: " + strconv.Quote(k.Name) + "}" }

var keyName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ReadKeyFile reads fleet reload keys: one per line, "NAME:SECRET" or just
// "SECRET" (named key1, key2, … by position); blank lines and lines
// starting with # are skipped. A secret is the line's bytes after the name,
// trimmed of surrounding white space, at least MinKeyBytes long (for
// example `openssl rand -hex 32`). The first key signs (hector reload);
// every key verifies (hector serve), which is how keys are rotated.
//
// warning is set when the file is readable or writable by group or others;
// that is not an error. Errors name the file and the line, never a secret.
func ReadKeyFile(path string) (keys []Key, warning string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("reload key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("reload key file %s has mode %#o: other users may read the fleet reload key; chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, warning, fmt.Errorf("reload key file: %w", err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, secret := fmt.Sprintf("key%d", len(keys)+1), text
		if i := strings.Index(text, ":"); i >= 0 {
			name, secret = text[:i], strings.TrimSpace(text[i+1:])
			if !keyName.MatchString(name) {
				return nil, warning, fmt.Errorf("reload key file %s, line %d: a key name is 1 to 64 letters, digits, '.', '_' or '-'", path, line)
			}
		}
		if len(secret) < MinKeyBytes {
			return nil, warning, fmt.Errorf("reload key file %s, line %d: key %s is %d bytes; at least %d are needed (openssl rand -hex 32)",
				path, line, name, len(secret), MinKeyBytes)
		}
		if names[name] {
			return nil, warning, fmt.Errorf("reload key file %s, line %d: key name %s is used twice", path, line, name)
		}
		names[name] = true
		keys = append(keys, Key{Name: name, Secret: []byte(secret)})
	}
	if err := sc.Err(); err != nil {
		return nil, warning, fmt.Errorf("reload key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, warning, fmt.Errorf("reload key file %s holds no key", path)
	}
	return keys, warning, nil
}

// checkKeys is what StartBroker and Sign require of keys.
func checkKeys(keys []Key) error {
	if len(keys) == 0 {
		return errors.New("no signing key: fleet reloads must be signed")
	}
	for _, k := range keys {
		if len(k.Secret) < MinKeyBytes {
			return fmt.Errorf("key %s is %d bytes; at least %d are needed", k.Name, len(k.Secret), MinKeyBytes)
		}
	}
	return nil
}

func mac(secret []byte, ms string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ms))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(key Key, body []byte, t time.Time) string {
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	return "t=" + ms + ",v1=" + hex.EncodeToString(mac(key.Secret, ms, body))
}

// AckVerifier checks the signatures of fleet reload acks with keys: an
// instance signs its ack with the key that signed the request, so a
// client trusts only answers from holders of a key. Acks more than skew
// from now, or seen before, are refused like requests.
func AckVerifier(keys []Key, skew time.Duration) func(header string, body []byte) error {
	v := &verifier{keys: keys, skew: skew, maxReplay: 10_000, now: time.Now}
	return func(header string, body []byte) error {
		if _, reason, detail := v.check(header, body); reason != "" {
			return fmt.Errorf("%s: %s", reason, detail)
		}
		return nil
	}
}

// verifier checks signed requests and remembers, for the window, each
// signature it accepted so that a message is acted on once.
type verifier struct {
	keys      []Key
	skew      time.Duration
	maxReplay int
	now       func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // accepted signature (hex) -> when it goes stale
}

// check returns the name of the key that signed body, or a refusal reason
// and what to log about it (no key material). An accepted signature is
// remembered, so check is also the replay guard.
func (v *verifier) check(header string, body []byte) (key, reason, detail string) {
	if header == "" {
		return "", RefusedUnsigned, "no " + SignatureHeader + " header"
	}
	var ms, sig string
	for _, part := range strings.Split(header, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ms = val
		case "v1":
			sig = val
		}
	}
	t, err := strconv.ParseInt(ms, 10, 64)
	got, herr := hex.DecodeString(sig)
	if err != nil || herr != nil || len(got) != sha256.Size {
		return "", RefusedMalformed, SignatureHeader + " is not t=<unix-ms>,v1=<hex>"
	}
	for _, k := range v.keys {
		if hmac.Equal(got, mac(k.Secret, ms, body)) {
			key = k.Name
			break
		}
	}
	if key == "" {
		return "", RefusedBadSignature, "no configured key made this signature"
	}
	at, now := time.UnixMilli(t), v.now()
	if d := now.Sub(at); d > v.skew || d < -v.skew {
		return key, RefusedStale, fmt.Sprintf("signed %s from now; the window is ±%s", d.Round(time.Millisecond), v.skew)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	id := hex.EncodeToString(got)
	if _, ok := v.seen[id]; ok {
		return key, RefusedReplayed, "this signed message was already acted on"
	}
	if len(v.seen) >= v.maxReplay {
		for s, until := range v.seen {
			if !now.Before(until) {
				delete(v.seen, s)
			}
		}
		if len(v.seen) >= v.maxReplay { // fail closed: forgetting one would allow its replay
			return key, RefusedReplayed, fmt.Sprintf("%d signed requests within the window; refusing more until some go stale", len(v.seen))
		}
	}
	v.seen[id] = at.Add(v.skew)
	return key, "", ""
}
