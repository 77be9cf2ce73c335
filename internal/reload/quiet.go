package reload

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/snapshot"
)

// failureLogInterval is how often a build or prepare failure of the same
// document, retried by the watch, is logged again.
const failureLogInterval = 30 * time.Second

// quiet keeps the watch from repeating itself in outcomes and logs. A
// source that reports the same document again (an event that changed
// nothing, a reconnect) must not produce a line per report:
//
//   - a document rejected by validation is rejected the same way every
//     time (validation depends only on the document and the environment),
//     so the watch reports it once; its next reports are dropped before
//     the pipeline, until the source holds something else. Reload and
//     Submit are never dropped: an explicit request always gets an outcome.
//   - a document whose build or prepare failed (a database that cannot be
//     opened, a port in use) may succeed later, so every report is tried
//     again and recorded, but logged at most once per failureLogInterval.
//   - a no-op (the source reports the document already applied) is logged
//     at info once, and at debug while the watch keeps reporting it.
type quiet struct {
	mu       sync.Mutex
	rejected string    // hash of the document the watch last saw fail validation
	failed   string    // hash of the document whose build or prepare last failed
	failedAt time.Time // when that failure was last logged
	noop     string    // hash of the last no-op the watch logged at info
	// startFailure is the read error Start fell back to the cache on. The
	// source is degraded from then on, but the watch's first report of the
	// same error is still news, so the outcomes record the failure once.
	startFailure string
}

// startedDegraded records the read error Start fell back to the cache on.
func (q *quiet) startedDegraded(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.startFailure = err.Error()
}

// firstReport reports whether msg is the start's failure, reported by the
// watch for the first time.
func (q *quiet) firstReport(msg string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if msg != q.startFailure {
		return false
	}
	q.startFailure = ""
	return true
}

// repeat reports whether rev, read by the watch, is the document the watch
// last saw rejected by validation: it is dropped without an outcome.
func (q *quiet) repeat(rev source.Revision) bool {
	if rev.Err != nil || rev.Hash == "" {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return rev.Hash == q.rejected
}

// level records out and returns the level to log it at.
func (q *quiet) level(out Outcome) slog.Level {
	q.mu.Lock()
	defer q.mu.Unlock()
	level := slog.LevelInfo
	if out.Result == Rejected {
		level = slog.LevelError
	}
	if out.Trigger != TriggerWatch {
		if out.Result == Applied {
			q.rejected, q.failed, q.noop = "", "", ""
		}
		return level
	}
	switch {
	case out.Result == Applied:
		q.rejected, q.failed, q.noop = "", "", ""
	case out.Result == NoOp:
		q.rejected = ""
		if out.Hash == q.noop {
			level = slog.LevelDebug
		}
		q.noop = out.Hash
	case len(out.Errors) > 0 && strings.HasPrefix(out.Errors[0].Path, "(source)"):
		// Read failures are deduplicated with the source's status.
	case builtOrPrepared(out):
		q.rejected, q.noop = "", ""
		if out.Hash == q.failed && time.Since(q.failedAt) < failureLogInterval {
			level = slog.LevelDebug
		} else {
			q.failed, q.failedAt = out.Hash, time.Now()
		}
	default: // parse or validation
		q.rejected, q.noop = out.Hash, ""
	}
	return level
}

// builtOrPrepared reports whether a rejection happened at the build stage
// or later, where a failure can be transient, rather than in parse or
// validation, which fail the same way every time.
func builtOrPrepared(out Outcome) bool {
	_, built := out.Stages["build"]
	return built
}

// fromCache reports whether cur was started from the last known good cache
// and rev is a read of the source itself. rev is then applied even when it
// is the same document (as a new version), so that the snapshot, the
// history and /health name the real source again.
func fromCache(cur *snapshot.Snapshot, rev source.Revision) bool {
	return cur != nil && rev.Err == nil && cur.Source != rev.Source && strings.HasPrefix(cur.Source, "cache:")
}
