package identity

import "fmt"

// The checks an *Error can name.
const (
	CheckMalformed       = "malformed"        // not a compact JWS, or a claim of the wrong type
	CheckAlgorithm       = "algorithm"        // alg none, HMAC, or an unsupported algorithm
	CheckSignature       = "signature"        // the signature does not verify
	CheckUnknownKey      = "unknown key"      // kid not in the JWKS, even after a refresh
	CheckExpired         = "expired"          // exp passed (or missing: exp is required)
	CheckNotYetValid     = "not yet valid"    // nbf or iat in the future
	CheckIssuer          = "issuer"           // wrong iss, or an iss no configured issuer has
	CheckAudience        = "audience"         // aud missing or without the expected audience
	CheckSubject         = "subject"          // the subject claim is missing or not a string
	CheckTenant          = "tenant"           // the tenant claim is present but not a string
	CheckKeysUnavailable = "keys unavailable" // the JWKS could not be fetched
)

// Error is why a token was refused. Check is one of the Check constants;
// Message explains it for a log or a 401 body. Neither ever contains the
// token or a claim value: only the issuer's configured Name, its expected
// audience and claim names.
type Error struct {
	Check   string
	Message string
}

// Error returns "jwt CHECK: MESSAGE".
func (e *Error) Error() string { return "jwt " + e.Check + ": " + e.Message }

// fail builds an *Error for issuer name (omitted when "").
func fail(name, check, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if name != "" {
		msg = fmt.Sprintf("issuer %q: %s", name, msg)
	}
	return &Error{Check: check, Message: msg}
}
