// Package identity verifies who made a request: JWTs issued by identity
// providers, checked against the signing keys each provider publishes at a
// JWKS URL.
//
// An Issuer verifies the tokens of one provider and keeps its keys fresh in
// the background; a Set routes each token to the Issuer named by its iss
// claim. Only asymmetric signatures are accepted (RS*, PS*, ES*, EdDSA), so
// neither "alg: none" nor an HMAC keyed with a public key can forge a token.
//
// Every failure is an *Error whose Check names the test that failed. Error
// messages never contain the token or a claim value.
package identity

import (
	"encoding/base64"
	"strings"

	"github.com/hector-run/hector/internal/config"
)

// Principal is who made a request.
type Principal struct {
	Subject string      // key name or JWT subject claim
	Tenant  string      // "" = the main tenant
	Role    config.Role // what the principal may do
	Via     string      // "key" for API keys, or the issuer's Name for JWTs
}

// ViaKey is Principal.Via for a request authenticated with an API key.
const ViaKey = "key"

// ViaNone is Principal.Via for a request without a credential: on a
// server without credentials (Anonymous admin) or one whose
// server.auth.require is false (Anonymous user).
const ViaNone = "anonymous"

// Anonymous is the principal of a request without a credential, with the
// role the server grants such requests.
func Anonymous(role config.Role) Principal {
	return Principal{Subject: "anonymous", Role: role, Via: ViaNone}
}

// ID names the principal as the owner of sessions and tasks: an API key's
// name, "anonymous", or NAME:SUBJECT for a JWT, so that two providers'
// subjects never collide (key names may not contain ':').
func (p Principal) ID() string {
	if p.Via == ViaKey || p.Via == ViaNone {
		return p.Subject
	}
	return p.Via + ":" + p.Subject
}

// Has reports whether the principal's role is at least role.
func (p Principal) Has(role config.Role) bool {
	return roleRank(p.Role) >= roleRank(role)
}

// maxTokenBytes bounds the tokens Verify looks at; longer ones are malformed.
const maxTokenBytes = 64 << 10

// LooksLikeJWT reports whether a bearer token has the shape of a compact JWS:
// three base64url segments separated by dots, the first (the header) a JSON
// object. It decides only where a token is sent (API keys are not sent to the
// JWT path); it verifies nothing. The signature segment may be empty, so an
// unsigned "alg: none" token still reaches Verify and is refused there.
func LooksLikeJWT(token string) bool {
	if len(token) > maxTokenBytes || strings.Count(token, ".") != 2 {
		return false
	}
	parts := strings.Split(token, ".")
	if parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		if !isBase64URL(p) {
			return false
		}
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	return err == nil && len(header) > 0 && header[0] == '{'
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
