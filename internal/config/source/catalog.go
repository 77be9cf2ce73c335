package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hector-run/hector/internal/config"
)

// Catalog is where the documents of apps (tenants) live beside a main
// configuration document: the files of an apps/ directory next to the
// main file, the keys or znodes under KEY/apps/ of the main key (main
// /hector/production: apps /hector/production/apps/NAME), or the
// database documents named the same way (main "default": apps
// "default/apps/NAME").
//
// One watch covers every app, so a thousand apps cost one watch, not a
// thousand. A Catalog only fetches, stores and watches: validation and
// applying are the apps registry's.
type Catalog interface {
	// Name identifies the catalog in outcomes and logs, e.g.
	// "file:/etc/hector/apps" or "etcd:/hector/apps/".
	Name() string
	// AppSource names one app's document as a Source would
	// ("etcd:/hector/apps/customer-a"); revisions carry it.
	AppSource(app string) string
	// List reads every stored app's document now. An absent apps
	// directory or prefix is an empty list, not an error.
	List(ctx context.Context) (map[string]Revision, error)
	// Load reads one app's document now; Err is ErrNotFound when absent.
	Load(ctx context.Context, app string) Revision
	// Watch calls notify(app, rev) once for every stored app when the
	// watch is established, then for each app whose document may have
	// changed, until ctx ends; it returns ctx's error or a failure of the
	// backend (the caller retries with backoff and calls Watch again,
	// which reports every app again). A removed app is reported with a
	// revision whose Err is ErrNotFound. notify must not block; it may be
	// called with unchanged content.
	Watch(ctx context.Context, notify func(app string, rev Revision)) error
	// Put stores an app's document, creating it when absent.
	Put(ctx context.Context, app string, data []byte) error
	// Delete removes an app's document; ErrNotFound when absent.
	Delete(ctx context.Context, app string) error
}

// CheckAppName returns an error naming the rule when name cannot be an
// app's name (config.CheckAppName).
func CheckAppName(name string) error { return config.CheckAppName(name) }

// AppsOf returns the catalog of apps kept beside src's main document, and
// false when src has none. An Overlay has none: its layers are one main
// document merged from several places, and which layer's apps/ prefix
// would hold the apps is not something the overlay can decide.
func AppsOf(src Source) (Catalog, bool) {
	if a, ok := src.(interface{ Apps() Catalog }); ok {
		return a.Apps(), true
	}
	return nil, false
}

// appsPrefix is where the apps of a main key live, ending in "/": under
// the key, so that each deployment's key has its own apps
// ("/hector/production" gives "/hector/production/apps/", "default"
// gives "default/apps/").
func appsPrefix(key string) string {
	return strings.TrimSuffix(key, "/") + "/apps/"
}

// appNotFound is the revision of an app that is not stored.
func appNotFound(source, app string) Revision {
	return Revision{Source: source, Err: fmt.Errorf("app %q (%s): %w", app, source, ErrNotFound)}
}

// appReport remembers what a catalog watch last reported for each app, so
// a watch that learns the whole state at once (a re-list, a poll) reports
// only the apps that changed and those that went away.
type appReport struct {
	last   map[string]string // app -> hash, or the error's text
	notify func(app string, rev Revision)
}

func newAppReport(notify func(string, Revision)) *appReport {
	return &appReport{last: map[string]string{}, notify: notify}
}

func revisionKey(r Revision) string {
	if r.Err != nil {
		return "error:" + r.Err.Error()
	}
	return r.Hash
}

// set reports one app's revision when it differs from the last reported
// (and says whether it did); a not-found revision forgets the app.
func (a *appReport) set(app string, rev Revision) bool {
	if errors.Is(rev.Err, ErrNotFound) {
		if _, ok := a.last[app]; !ok {
			return false
		}
		delete(a.last, app)
	} else {
		k := revisionKey(rev)
		if old, ok := a.last[app]; ok && old == k {
			return false
		}
		a.last[app] = k
	}
	a.notify(app, rev)
	return true
}

// all reports the apps of a complete listing that changed, in name order,
// and every app reported before that the listing lacks as not found
// (gone gives its revision). It says whether it reported anything.
func (a *appReport) all(now map[string]Revision, gone func(app string) Revision) bool {
	news := false
	for _, app := range slices.Sorted(maps.Keys(now)) {
		news = a.set(app, now[app]) || news
	}
	for _, app := range slices.Sorted(maps.Keys(a.last)) {
		if _, ok := now[app]; !ok {
			news = a.set(app, gone(app)) || news
		}
	}
	return news
}
