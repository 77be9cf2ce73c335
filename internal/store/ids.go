package store

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// The id rules of every protocol (REST, A2A): ids are made and checked
// here only.

var sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// SessionIDRule describes, for error messages, what ValidSessionID accepts.
const SessionIDRule = "1-128 characters of letters, digits, '_', '.', ':' or '-'"

// ValidSessionID reports whether id may name a session: 1-128 letters,
// digits, '_', '.', ':' or '-', so that it is safe in a URL path and a log.
func ValidSessionID(id string) bool { return sessionIDPattern.MatchString(id) }

// NewSessionID returns a fresh random session id (32 hex digits), valid
// under ValidSessionID.
func NewSessionID() string { return randomHex() }

// NewTaskID returns a fresh random task id: "t_" and 32 hex digits.
func NewTaskID() string { return "t_" + randomHex() }

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
