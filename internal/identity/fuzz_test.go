package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzVerify checks that Verify never panics and refuses garbage with an
// *Error whose message does not repeat the input.
func FuzzVerify(f *testing.F) {
	r1, _, ec, _ := keys(f)
	srv := newJWKSServer(f, r1, ec)
	iss := newTestIssuer(f, srv, nil)
	valid := r1.sign(f, claims(nil))
	head, rest, _ := strings.Cut(valid, ".")
	body, _, _ := strings.Cut(rest, ".")
	for _, seed := range []string{
		"", ".", "..", "a.b.c", "hk_live_key", valid[:len(valid)-3] + "AAA", valid + "x",
		head + "." + body + ".", head + ".." + "sig", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJSUzI1NiIsImtpZCI6W119.e30.c2ln", "eyJhbGciOiJFUzI1NiJ9.bnVsbA.c2ln",
		"eyJhbGciOlsiUlMyNTYiXX0.e30.c2ln", strings.Repeat("eyJ.", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = LooksLikeJWT(token)
		p, err := iss.Verify(ctx, token)
		if err == nil {
			if token == valid {
				return
			}
			t.Fatalf("Verify(%q) = %+v, nil error", token, p)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Verify(%q) error %T is not *Error", token, err)
		}
		if len(token) > 8 && strings.Contains(err.Error(), token) {
			t.Fatalf("error repeats the token: %v", err)
		}
		if _, err := (Set{iss}).Verify(ctx, token); err == nil && token != valid {
			t.Fatalf("Set.Verify(%q) = nil error", token)
		}
	})
}

// TestTokenWithoutKID verifies a token without kid against every key.
func TestTokenWithoutKID(t *testing.T) {
	r1, _, ec, _ := keys(t)
	srv := newJWKSServer(t, r1, ec)
	iss := newTestIssuer(t, srv, nil)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims(nil)).SignedString(ec.priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}
