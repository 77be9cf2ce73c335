package identity

import "context"

// Set is the configured issuers. It does not own them: whoever built the
// Issuers closes them.
type Set []*Issuer

// Verify chooses the issuer of token by its iss claim (read before
// verification, only to route), then verifies token with that Issuer as
// Issuer.Verify does. With exactly one issuer, every token goes to it
// (without parsing it twice), and it checks iss itself. A token whose iss no issuer has fails the
// "issuer" check.
func (s Set) Verify(ctx context.Context, token string) (Principal, error) {
	if len(s) == 1 {
		return s[0].Verify(ctx, token) // it checks iss itself, when it has one
	}
	_, claims, e := peek(token)
	if e != nil {
		return Principal{}, e
	}
	iss, _ := claims["iss"].(string)
	if iss != "" {
		for _, i := range s {
			if i.Claims() == iss {
				return i.Verify(ctx, token)
			}
		}
	}
	if len(s) == 0 {
		return Principal{}, &Error{Check: CheckIssuer, Message: "no JWT issuer is configured"}
	}
	return Principal{}, &Error{Check: CheckIssuer, Message: "token issuer is not configured"}
}
