package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// loadHashKey reads the database's config_hash key, making it on first
// use. Every instance on the database reads the same key, so they show
// the same public hash for the same document.
func (s *Store) loadHashKey(ctx context.Context) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("hash key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO hector_keys (name, value) VALUES ('config_hash', ?) ON CONFLICT (name) DO NOTHING`),
		hex.EncodeToString(b)); err != nil {
		return fmt.Errorf("hash key: %w", err)
	}
	var v string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM hector_keys WHERE name = 'config_hash'`).Scan(&v); err != nil {
		return fmt.Errorf("hash key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return fmt.Errorf("hash key: the stored key is not usable")
	}
	s.hashKey = key
	return nil
}

// PublicHash is how the hash of a configuration document (config.Hash, a
// plain SHA-256) is shown to API callers: keyed with this database's
// secret key. A plain hash would let a viewer, who reads the document with
// its secrets redacted, test guesses of a literal secret (a short
// password in database.url) offline; the keyed one cannot be computed
// without the key. It is stable for the database: the same document gives
// the same public hash on every instance using it.
func (s *Store) PublicHash(raw string) string {
	if raw == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte(raw))
	return hex.EncodeToString(m.Sum(nil))
}
