package reload

import (
	"time"

	"github.com/hector-run/hector/internal/observe"
)

// Metric is the outcome as observe.Metrics.Reload counts it: an applied
// outcome went into force when it ended; a rejected one counts its
// validation errors (a source that could not be read is counted by
// OnSourceError instead).
func (o Outcome) Metric() observe.Reload {
	elapsed := time.Duration(o.ElapsedMS * float64(time.Millisecond))
	m := observe.Reload{Result: string(o.Result), Source: o.Source, Version: o.Version, Elapsed: elapsed}
	switch o.Result {
	case Applied:
		m.AppliedAt = o.At.Add(elapsed)
	case Rejected:
		for _, e := range o.Errors {
			if e.Path != "(source)" {
				m.ValidationErrors++
			}
		}
	}
	return m
}
