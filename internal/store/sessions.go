package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hector-run/hector/internal/llm"
)

// Owner is who a session or task belongs to: a principal within a tenant.
type Owner struct {
	// Tenant is the principal's tenant; "" is the main tenant.
	Tenant string `json:"tenant,omitempty"`
	// Principal is an API key's name or a JWT's issuer:subject.
	Principal string `json:"owner,omitempty"`
}

// Scope selects what a caller may see: rows of its tenant, and, when
// Principal is set, only its own.
type Scope struct {
	Tenant    string
	Principal string // "": every principal of the tenant
}

// Sees reports whether a row owned by o is within the scope.
func (sc Scope) Sees(o Owner) bool {
	return o.Tenant == sc.Tenant && (sc.Principal == "" || o.Principal == sc.Principal)
}

// MayContinue reports whether a principal, by, may add turns to a session
// owned by o: its owner, within the same tenant. A session from before
// owners were recorded (no principal) is adopted by the first principal
// of its tenant that continues it.
func (o Owner) MayContinue(by Owner) bool {
	return o.Tenant == by.Tenant && (o.Principal == "" || o.Principal == by.Principal)
}

// Session is a conversation with one agent.
type Session struct {
	ID    string `json:"id"`
	Agent string `json:"agent"`
	Owner
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StoredMessage is a message with its place in the session.
type StoredMessage struct {
	Seq           int       `json:"seq"`
	ConfigVersion int64     `json:"config_version"`
	CreatedAt     time.Time `json:"created_at"`
	llm.Message
}

// Session returns the session id, or ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*Session, error) {
	var out Session
	var created, updated string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, agent, tenant, owner, created_at, updated_at FROM sessions WHERE id = ?`), id).
		Scan(&out.ID, &out.Agent, &out.Tenant, &out.Principal, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load session %s: %w", id, err)
	}
	out.CreatedAt, out.UpdatedAt = parseTime(created), parseTime(updated)
	return &out, nil
}

// Messages returns a session's messages in order (none for an unknown session).
func (s *Store) Messages(ctx context.Context, sessionID string) ([]StoredMessage, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, role, content, tool_calls, tool_call_id, name, is_error, config_version, created_at
		FROM messages WHERE session_id = ? ORDER BY seq`), sessionID)
	if err != nil {
		return nil, fmt.Errorf("load messages of %s: %w", sessionID, err)
	}
	defer rows.Close()
	var out []StoredMessage
	for rows.Next() {
		var m StoredMessage
		var role, created string
		var calls sql.NullString
		if err := rows.Scan(&m.Seq, &role, &m.Content, &calls, &m.ToolCallID, &m.Name, &m.IsError, &m.ConfigVersion, &created); err != nil {
			return nil, err
		}
		m.Role, m.CreatedAt = llm.Role(role), parseTime(created)
		if calls.Valid {
			if err := json.Unmarshal([]byte(calls.String), &m.ToolCalls); err != nil {
				return nil, fmt.Errorf("message %d of %s: bad tool_calls: %w", m.Seq, sessionID, err)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// History returns a session's conversation as model messages.
func (s *Store) History(ctx context.Context, sessionID string) (_ []llm.Message, err error) {
	ctx, end := s.span(ctx, "SELECT", "messages")
	defer func() { end(err) }()
	stored, err := s.Messages(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	msgs := make([]llm.Message, len(stored))
	for i, m := range stored {
		msgs[i] = m.Message
	}
	return msgs, nil
}

// AppendTurn atomically appends msgs to a session, creating the session for
// agent, owned by owner, if it does not exist. configVersion records which
// configuration produced the messages. A session owner may not continue
// (Owner.MayContinue) is ErrNotFound and is not changed: callers check
// before running the turn, and the statement enforces it again.
func (s *Store) AppendTurn(ctx context.Context, sessionID, agent string, owner Owner, configVersion int64, msgs []llm.Message) (err error) {
	ctx, end := s.span(ctx, "INSERT", "messages")
	defer func() { end(err) }()
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append to %s: %w", sessionID, err)
	}
	defer tx.Rollback()
	if err := s.appendTurn(ctx, tx, sessionID, agent, owner, configVersion, msgs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append to %s: %w", sessionID, err)
	}
	return nil
}

// appendTurn is AppendTurn inside the caller's transaction.
func (s *Store) appendTurn(ctx context.Context, tx *sql.Tx, sessionID, agent string, owner Owner, configVersion int64, msgs []llm.Message) error {
	ts := now()
	// On PostgreSQL the upsert locks the session row until commit, so
	// concurrent turns on one session number their messages in turn.
	// The WHERE is Owner.MayContinue: nobody appends to another's session.
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO sessions (id, agent, tenant, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
			owner = CASE WHEN sessions.owner = '' THEN excluded.owner ELSE sessions.owner END
		WHERE sessions.tenant = excluded.tenant AND (sessions.owner = excluded.owner OR sessions.owner = '')`),
		sessionID, agent, owner.Tenant, owner.Principal, ts, ts)
	if err != nil {
		return fmt.Errorf("append to %s: %w", sessionID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("append to %s: %w", sessionID, ErrNotFound) // another principal's session
	}
	var seq int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?`), sessionID).Scan(&seq); err != nil {
		return fmt.Errorf("append to %s: %w", sessionID, err)
	}
	for _, m := range msgs {
		seq++
		var calls any
		if len(m.ToolCalls) > 0 {
			b, err := json.Marshal(m.ToolCalls)
			if err != nil {
				return err
			}
			calls = string(b)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, name, is_error, config_version, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), sessionID, seq, string(m.Role), m.Content, calls, m.ToolCallID, m.Name, m.IsError, configVersion, ts); err != nil {
			return fmt.Errorf("append to %s: %w", sessionID, err)
		}
	}
	return nil
}
