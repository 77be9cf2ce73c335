package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

const benchKey = "bench-key-0123456789abcdef"

// jwks serves one RSA key as a JWKS and signs tokens with it.
type jwks struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newJWKS() (*jwks, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(doc) }))
	return &jwks{srv: srv, key: k}, nil
}

func (j *jwks) token() (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://idp.bench", "aud": "hector", "sub": "bench",
		"exp": time.Now().Add(time.Hour).Unix()})
	t.Header["kid"] = "k1"
	return t.SignedString(j.key)
}

// authCost measures what authentication adds per request: the same
// requests, in the same run, to a server without credentials and to one
// with an API key and a JWT issuer, sent with no credential, the key and a
// JWT (whose signing key is cached after the first request).
func authCost(d time.Duration) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	idp, err := newJWKS()
	if err != nil {
		return err
	}
	defer idp.srv.Close()
	tok, err := idp.token()
	if err != nil {
		return err
	}
	open, err := start(config(fake.URL, "bench"))
	if err != nil {
		return err
	}
	defer open.stop()
	keyed := strings.Replace(config(fake.URL, "bench"), "server: {port: 0}", fmt.Sprintf(`server:
  port: 0
  auth:
    api_keys: [{name: bench, key: %s, role: user}]
    jwt: {issuer: "https://idp.bench", audience: hector, jwks_url: %q}`, benchKey, idp.srv.URL), 1)
	secured, err := start(keyed)
	if err != nil {
		return err
	}
	defer secured.stop()
	rows := []struct{ name, base, cred string }{{"no auth", open.base, ""}, {"API key", secured.base, benchKey}, {"JWT (RS256)", secured.base, tok}}
	fmt.Printf("(d) authentication cost, same run: GET /v1/agents/a (no database) and POST /v1/agents/a/messages, %s per run\n", d)
	fmt.Printf("    %-12s %-9s %8s %10s %10s %10s %8s\n", "credential", "request", "clients", "req/s", "p50", "p99", "ratio")
	for _, req := range []struct{ name, method, path, body string }{{"GET agent", "GET", "/v1/agents/a", ""}, {"POST turn", "POST", "/v1/agents/a/messages", `{"message":"hi"}`}} {
		for _, n := range []int{1, 32} {
			var baseRPS float64
			for i, row := range rows {
				send := func(int, int) (*http.Response, error) {
					r, _ := http.NewRequest(req.method, row.base+req.path, strings.NewReader(req.body))
					r.Header.Set("Content-Type", "application/json")
					if row.cred != "" {
						r.Header.Set("Authorization", "Bearer "+row.cred)
					}
					return client.Do(r)
				}
				loadFunc(8, 300*time.Millisecond, nil, send) // warm up
				res := loadFunc(n, d, nil, send)
				if i == 0 {
					baseRPS = res.rps()
				}
				fmt.Printf("    %-12s %-9s %8d %10.0f %10s %10s %8.2f\n", row.name, req.name, n, res.rps(), ms(pct(res.latencies, 0.5)), ms(pct(res.latencies, 0.99)), res.rps()/baseRPS)
				if res.failed > 0 {
					return fmt.Errorf("%s %s: %d failed requests", row.name, req.name, res.failed)
				}
			}
		}
	}
	return nil
}
