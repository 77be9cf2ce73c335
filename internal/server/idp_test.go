package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// idp is an identity provider for tests: a real JWKS served over HTTP,
// whose keys the test adds and removes, and the tokens they sign.
type idp struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	mu     sync.Mutex
	keys   map[string]crypto.Signer
	served atomic.Int64 // JWKS requests answered
}

const testAudience = "hector"

// newIDP serves a JWKS with an RSA key "r1" and an EC P-256 key "e1".
func newIDP(t *testing.T, issuer string) *idp {
	t.Helper()
	p := &idp{t: t, issuer: issuer, keys: map[string]crypto.Signer{}}
	p.add("r1", rsaKey(t))
	p.add("e1", ecKey(t))
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.jwks())
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func rsaKey(t *testing.T) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *idp) url() string { return p.srv.URL + "/jwks.json" }

func (p *idp) add(kid string, k crypto.Signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[kid] = k
}

func (p *idp) remove(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, kid)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *idp) jwks() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	kids := make([]string, 0, len(p.keys))
	for kid := range p.keys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	var keys []map[string]string
	for _, kid := range kids {
		switch k := p.keys[kid].(type) {
		case *rsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PrivateKey:
			x, y := make([]byte, 32), make([]byte, 32)
			k.X.FillBytes(x)
			k.Y.FillBytes(y)
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(x), "y": b64(y)})
		}
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// token signs claims with key kid, adding iss, aud and a one-hour exp
// unless claims set them.
func (p *idp) token(kid string, claims jwt.MapClaims) string {
	p.t.Helper()
	full := jwt.MapClaims{"iss": p.issuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		full[k] = v
	}
	p.mu.Lock()
	key := p.keys[kid]
	p.mu.Unlock()
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		method = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(method, full)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}
