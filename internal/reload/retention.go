package reload

import (
	"context"

	"github.com/hector-run/hector/internal/store"
)

// DefaultHistoryLimit is how many applied versions the history keeps when
// Reconciler.HistoryLimit is 0 (--config-history).
const DefaultHistoryLimit = 1000

// prune deletes history beyond the newest HistoryLimit versions. It runs
// in the background history writer, after each version is recorded; a
// failure is logged and retried after the next one.
func (r *Reconciler) prune(st *store.Store) {
	keep := r.HistoryLimit
	if keep <= 0 {
		keep = DefaultHistoryLimit
	}
	if n, err := st.PruneConfigVersions(context.Background(), r.App, keep); err != nil {
		r.Log.Warn("config history not pruned", "keep", keep, "error", err)
	} else if n > 0 {
		r.Log.Debug("config history pruned", "deleted", n, "keep", keep)
	}
}
