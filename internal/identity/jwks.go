package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
)

// maxJWKSBytes bounds a JWKS response body; a larger one is refused.
const maxJWKSBytes = 1 << 20

// fetchKeys GETs the JWKS at u and returns a Keyfunc over its signing keys.
// Errors never repeat u (it may carry a secret).
func fetchKeys(ctx context.Context, client *http.Client, u string) (keyfunc.Keyfunc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("cannot build the JWKS request")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, errors.New("JWKS request failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS request: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, errors.New("JWKS response could not be read")
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS response is larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(ctx, body)
}

// parseJWKS returns a Keyfunc over the public signing keys of a JWKS
// document. Keys it cannot use are skipped, as the provider may publish
// kinds this build does not know: symmetric (oct) keys, encryption keys
// (use "enc") and unsupported or invalid keys. A document without a "keys"
// member is an error; an empty "keys" list is not (every key was revoked).
func parseJWKS(ctx context.Context, body []byte) (keyfunc.Keyfunc, error) {
	var doc jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("JWKS response is not JSON")
	}
	if doc.Keys == nil {
		return nil, errors.New(`JWKS response has no "keys" member`)
	}
	store := jwkset.NewMemoryStorage()
	for _, m := range doc.Keys {
		if m.KTY == jwkset.KtyOct || m.USE == jwkset.UseEnc {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			return nil, errors.New("JWKS key could not be stored")
		}
	}
	return keyfunc.New(keyfunc.Options{Ctx: context.Background(), Storage: store})
}
