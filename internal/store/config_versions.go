package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ConfigVersion is one applied configuration. Content has its secrets
// redacted before it reaches the store.
type ConfigVersion struct {
	// App is the app (tenant) whose configuration this is; "" is the main
	// configuration. Each app numbers its versions on its own.
	App       string          `json:"app,omitempty"`
	Version   int64           `json:"version"`
	Hash      string          `json:"hash"`
	Source    string          `json:"source"`
	Trigger   string          `json:"trigger"`
	Actor     string          `json:"actor,omitempty"`
	Format    string          `json:"format"`
	Content   string          `json:"content,omitempty"`
	Plan      json.RawMessage `json:"applied,omitempty"`
	AppliedAt time.Time       `json:"applied_at"`
}

// ErrVersionTaken is a version number another instance recorded with
// different content.
var ErrVersionTaken = errors.New("version already recorded with different content")

// SaveConfigVersion records an applied version. Instances sharing the
// database record each version once: saving a version already recorded
// with the same content changes nothing, and with different content gives
// ErrVersionTaken (the first record stands).
func (s *Store) SaveConfigVersion(ctx context.Context, v ConfigVersion) error {
	defer s.lockWrite()()
	plan := string(v.Plan)
	if plan == "" {
		plan = "{}"
	}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO config_versions (app, version, hash, source, trigger, actor, format, content, plan, applied_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app, version) DO NOTHING`),
		v.App, v.Version, v.Hash, v.Source, v.Trigger, v.Actor, v.Format, v.Content, plan, v.AppliedAt.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("save config version %d: %w", v.Version, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var hash string
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT hash FROM config_versions WHERE app = ? AND version = ?`), v.App, v.Version).Scan(&hash); err != nil {
			return fmt.Errorf("save config version %d: %w", v.Version, err)
		}
		if hash != v.Hash {
			return fmt.Errorf("save config version %d: %w", v.Version, ErrVersionTaken)
		}
	}
	return nil
}

// LatestConfigRecord returns app's highest recorded version and its hash
// (0 and "" when none).
func (s *Store) LatestConfigRecord(ctx context.Context, app string) (int64, string, error) {
	var v int64
	var hash string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT version, hash FROM config_versions WHERE app = ? ORDER BY version DESC LIMIT 1`), app).Scan(&v, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("latest config version: %w", err)
	}
	return v, hash, nil
}

// ConfigVersions lists app's recorded versions, newest first, without
// content. limit <= 0 means 100.
func (s *Store) ConfigVersions(ctx context.Context, app string, limit int) ([]ConfigVersion, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT app, version, hash, source, trigger, actor, format, '', plan, applied_at
		FROM config_versions WHERE app = ? ORDER BY version DESC LIMIT ?`), app, limit)
	if err != nil {
		return nil, fmt.Errorf("list config versions: %w", err)
	}
	defer rows.Close()
	var out []ConfigVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// GetConfigVersion returns one of app's versions with its content, or
// ErrNotFound.
func (s *Store) GetConfigVersion(ctx context.Context, app string, version int64) (ConfigVersion, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT app, version, hash, source, trigger, actor, format, content, plan, applied_at
		FROM config_versions WHERE app = ? AND version = ?`), app, version)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}

func scanVersion(row interface{ Scan(...any) error }) (ConfigVersion, error) {
	var v ConfigVersion
	var plan, at string
	if err := row.Scan(&v.App, &v.Version, &v.Hash, &v.Source, &v.Trigger, &v.Actor, &v.Format, &v.Content, &plan, &at); err != nil {
		return v, err
	}
	v.Plan, v.AppliedAt = json.RawMessage(plan), parseTime(at)
	return v, nil
}

// PruneConfigVersions deletes all but app's newest keep versions and returns
// how many it deleted. keep must be at least 1: the version serving is
// always among the newest, so it is never deleted.
func (s *Store) PruneConfigVersions(ctx context.Context, app string, keep int) (int64, error) {
	if keep < 1 {
		return 0, fmt.Errorf("prune config versions: keep must be at least 1, got %d", keep)
	}
	defer s.lockWrite()()
	// The oldest version kept is the keep-th newest; with fewer versions
	// than that the subquery is empty and nothing is deleted.
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM config_versions WHERE app = ? AND version <
		(SELECT version FROM config_versions WHERE app = ? ORDER BY version DESC LIMIT 1 OFFSET ?)`), app, app, keep-1)
	if err != nil {
		return 0, fmt.Errorf("prune config versions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
