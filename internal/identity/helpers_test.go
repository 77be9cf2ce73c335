package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/config"
)

const testIss = "https://idp.example.com/"
const testAud = "hector-api"

// testKey is a signing key with its kid and JWK.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
	jwk    map[string]string
}

var (
	keysOnce sync.Once
	rsaKey1  *testKey
	rsaKey2  *testKey
	ecKey1   *testKey
	edKey1   *testKey
)

// keys generates the test keys once: RSA 2048 is slow under -race.
func keys(t testing.TB) (r1, r2, ec, ed *testKey) {
	t.Helper()
	keysOnce.Do(func() {
		rsaKey1 = newRSAKey(t, "rsa-1")
		rsaKey2 = newRSAKey(t, "rsa-2")
		ecKey1 = newECKey(t, "ec-1")
		edKey1 = newEdKey(t, "ed-1")
	})
	return rsaKey1, rsaKey2, ecKey1, edKey1
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newRSAKey(t testing.TB, kid string) *testKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: jwt.SigningMethodRS256, priv: k, jwk: map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
	}}
}

func newECKey(t testing.TB, kid string) *testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	return &testKey{kid: kid, method: jwt.SigningMethodES256, priv: k, jwk: map[string]string{
		"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
		"x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}
}

func newEdKey(t testing.TB, kid string) *testKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: jwt.SigningMethodEdDSA, priv: priv, jwk: map[string]string{
		"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "x": b64(pub),
	}}
}

// sign returns claims signed by k, with k's kid in the header.
func (k *testKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer is a real JWKS endpoint whose keys and health tests change.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []*testKey
	down     bool          // answer 503
	delay    time.Duration // before answering
	body     []byte        // when set, served instead of the keys
	requests atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	down, delay, body := s.down, s.delay, s.body
	var list []map[string]string
	for _, k := range s.keys {
		list = append(list, k.jwk)
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	if body != nil {
		_, _ = w.Write(body)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": list})
}

func (s *jwksServer) setKeys(keys ...*testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// newTestIssuer returns an Issuer of srv (iss testIss, aud testAud, refresh
// every hour unless edit changes it), closed when the test ends.
func newTestIssuer(t testing.TB, srv *jwksServer, edit func(*config.JWTIssuer)) *Issuer {
	t.Helper()
	cfg := config.JWTIssuer{
		Name:            "test-idp",
		Issuer:          testIss,
		Audience:        testAud,
		JWKSURL:         srv.URL + "/jwks.json",
		RefreshInterval: config.Duration(time.Hour),
	}
	if edit != nil {
		edit(&cfg)
	}
	iss, err := NewIssuer(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	return iss
}

// claims returns valid claims for testIss/testAud, with extra merged in
// (a nil value deletes the claim).
func claims(extra jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIss, "aud": testAud, "sub": "alice",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"tenant_id": "acme", "role": "operator",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// checkOf returns err's *Error check, failing the test when err is not one.
func checkOf(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an *Error")
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	return e.Check
}

// waitFor polls cond for up to 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
