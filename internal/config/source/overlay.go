package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hector-run/hector/internal/config"
)

// Overlay is several sources read as one document, later ones over earlier
// ones (config.Merge: maps merge by key, lists and scalars replace), for a
// base file plus per-environment overrides in a backend. Every layer must
// be readable: a failed or missing layer fails the read, and the running
// configuration stays, rather than silently dropping the overrides. Each
// layer is watched its own way; a change in any re-merges them.
type Overlay struct {
	Sources []Source
	// MaxBytes is the largest merged document; 0 means DefaultMaxBytes.
	// Each layer has its own limit too.
	MaxBytes int64
}

// Name implements Source: "overlay:" and the layers joined by "+".
func (o *Overlay) Name() string {
	names := make([]string, len(o.Sources))
	for i, s := range o.Sources {
		names[i] = s.Name()
	}
	return "overlay:" + strings.Join(names, "+")
}

// Load implements Source.
func (o *Overlay) Load(ctx context.Context) Revision {
	revs := make([]Revision, len(o.Sources))
	for i, s := range o.Sources {
		revs[i] = s.Load(ctx)
	}
	return o.merge(revs, false)
}

// LoadWithOrigins reads and merges the layers, each value annotated with
// the layer it came from.
func (o *Overlay) LoadWithOrigins(ctx context.Context) Revision {
	revs := make([]Revision, len(o.Sources))
	for i, s := range o.Sources {
		revs[i] = s.Load(ctx)
	}
	return o.merge(revs, true)
}

func (o *Overlay) merge(revs []Revision, origins bool) Revision {
	layers := make([]config.Layer, len(revs))
	for i, r := range revs {
		if r.Err != nil {
			return Revision{Source: o.Name(), Err: fmt.Errorf("overlay layer %s: %w", o.Sources[i].Name(), r.Err)}
		}
		layers[i] = config.Layer{Name: o.Sources[i].Name(), Data: r.Data}
	}
	data, err := config.Merge(layers, origins)
	if err != nil {
		return Revision{Source: o.Name(), Err: fmt.Errorf("overlay: %w", err)}
	}
	return sized(o.Name(), data, o.MaxBytes)
}

// Watch implements Source: it watches every layer and, once each has been
// read, reports the merged document after every change. It returns when
// any layer's watch fails (the reconciler then re-establishes them all).
func (o *Overlay) Watch(ctx context.Context, notify func(Revision)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	revs := make([]Revision, len(o.Sources))
	have := make([]bool, len(o.Sources))
	errc := make(chan error, len(o.Sources))
	var wg sync.WaitGroup
	for i, s := range o.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Watch(ctx, func(r Revision) {
				mu.Lock()
				defer mu.Unlock()
				revs[i], have[i] = r, true
				for _, h := range have {
					if !h {
						return
					}
				}
				notify(o.merge(revs, false)) // under mu: in order; notify does not block
			})
			errc <- fmt.Errorf("overlay layer %s: %w", s.Name(), err)
		}()
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return context.Canceled
	}
	return err
}

// Close closes every layer that holds connections.
func (o *Overlay) Close() error {
	var errs []error
	for _, s := range o.Sources {
		if c, ok := s.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
