package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/llm"
)

// sessionLeaseTTL is how long a session lease lasts unless renewed; its
// holder renews it every third of that. A holder that dies blocks its
// session for at most this long.
const sessionLeaseTTL = 30 * time.Second

// LockSession waits until the caller holds sessionID's turn lease, or ctx
// ends (its error is returned, and nothing is held). The lease is a row of
// session_locks taken in one statement, so it excludes every other holder
// on the database: this process's, and other instances'. It is renewed in
// the background until release runs; release is idempotent and must run
// once the turn's messages are stored.
//
// Every turn that reads a session's history and appends to it (a REST
// message, a task attempt) holds the lease from the read to the append,
// so turns on one session never interleave.
func (s *Store) LockSession(ctx context.Context, sessionID string) (release func(), err error) {
	l, err := s.TakeSession(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// SessionLease is a held session lease: LockSession's, as a value that
// AppendTurnReleasing can give back in the append's own transaction.
type SessionLease struct {
	s           *Store
	id, owner   string
	stop, done  chan struct{}
	once        sync.Once
	releaseOnce sync.Once
}

// TakeSession is LockSession returning the lease itself. The caller must
// Release it, or hand it to AppendTurnReleasing; both may happen.
func (s *Store) TakeSession(ctx context.Context, sessionID string) (_ *SessionLease, err error) {
	ctx, end := s.span(ctx, "UPDATE", "session_locks")
	defer func() { end(err) }()
	owner := randomHex()
	wait := 5 * time.Millisecond
	for {
		ok, err := s.tryLockSession(ctx, sessionID, owner)
		if err != nil {
			return nil, err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock session %s: %w", sessionID, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
	l := &SessionLease{s: s, id: sessionID, owner: owner, stop: make(chan struct{}), done: make(chan struct{})}
	go s.renewSession(sessionID, owner, l.stop, l.done)
	return l, nil
}

// stopRenewing ends the background renewal, once.
func (l *SessionLease) stopRenewing() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
}

// Release gives the lease back. It is idempotent, and a no-op after an
// AppendTurnReleasing that committed.
func (l *SessionLease) Release() {
	l.releaseOnce.Do(func() {
		l.stopRenewing()
		s := l.s
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		defer s.lockWrite()()
		if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM session_locks WHERE session_id = ? AND owner = ?`), l.id, l.owner); err != nil {
			s.log.Warn("session lease not released; it expires by itself", "session", l.id, "error", err)
		}
	})
}

// AppendTurnReleasing is AppendTurn that gives lease back in the same
// transaction: one write for the turn and its lease's end.
func (s *Store) AppendTurnReleasing(ctx context.Context, lease *SessionLease, agent string, owner Owner, configVersion int64, msgs []llm.Message) (err error) {
	ctx, end := s.span(ctx, "INSERT", "messages")
	defer func() { end(err) }()
	lease.stopRenewing()
	unlock := s.lockWrite()
	err = func() error {
		defer unlock()
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("append to %s: %w", lease.id, err)
		}
		defer tx.Rollback()
		if err := s.appendTurn(ctx, tx, lease.id, agent, owner, configVersion, msgs); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM session_locks WHERE session_id = ? AND owner = ?`), lease.id, lease.owner); err != nil {
			return fmt.Errorf("append to %s: release its lease: %w", lease.id, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("append to %s: %w", lease.id, err)
		}
		return nil
	}()
	if err == nil {
		lease.releaseOnce.Do(func() {}) // given back in the transaction
	}
	return err
}

// tryLockSession takes the lease if it is free or expired.
func (s *Store) tryLockSession(ctx context.Context, sessionID, owner string) (bool, error) {
	defer s.lockWrite()()
	now := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO session_locks (session_id, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE session_locks.expires_at < ?`), sessionID, owner, ms(now.Add(sessionLeaseTTL)), ms(now))
	if err != nil {
		return false, fmt.Errorf("lock session %s: %w", sessionID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lock session %s: %w", sessionID, err)
	}
	return n == 1, nil
}

// renewSession extends the lease every third of its TTL until stop closes.
func (s *Store) renewSession(sessionID, owner string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(sessionLeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), sessionLeaseTTL/3)
		unlock := s.lockWrite()
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE session_locks SET expires_at = ? WHERE session_id = ? AND owner = ?`),
			ms(time.Now().Add(sessionLeaseTTL)), sessionID, owner)
		unlock()
		cancel()
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				err = fmt.Errorf("the lease expired and was taken over")
			}
		}
		if err != nil {
			s.log.Warn("session lease not renewed", "session", sessionID, "error", err)
		}
	}
}
