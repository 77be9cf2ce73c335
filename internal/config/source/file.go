package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long File waits for file-system events to stop
// before reading, so that a save made of several writes is read once. A
// burst of events is read at most 2×Debounce after its first event even if
// events keep coming, so a busy writer cannot postpone a reload forever.
const DefaultDebounce = 50 * time.Millisecond

// File is a configuration file. Watch observes the directory holding it (and
// the directory of its symlink target), not the file itself, so atomic-rename
// saves, sed -i, in-place writes and Kubernetes ConfigMap "..data" symlink
// swaps are all seen; events for other files in those directories are
// ignored.
type File struct {
	Path     string
	Debounce time.Duration
	// MaxBytes is the largest file read; 0 means DefaultMaxBytes.
	MaxBytes int64
}

// Name implements Source.
func (f *File) Name() string { return "file:" + f.Path }

// Load implements Source. A file over MaxBytes is not read beyond the
// limit.
func (f *File) Load(context.Context) Revision {
	data, err := f.read()
	if err != nil {
		return Revision{Source: f.Name(), Err: err}
	}
	return NewRevision(f.Name(), data)
}

func (f *File) read() ([]byte, error) {
	file, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	defer file.Close()
	max := limit(f.MaxBytes)
	data, err := io.ReadAll(io.LimitReader(file, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	if int64(len(data)) > max {
		size := int64(len(data))
		if st, err := file.Stat(); err == nil && st.Size() > size {
			size = st.Size()
		}
		return nil, CheckSize(f.Name(), size, max)
	}
	return data, nil
}

// Write replaces the file atomically (write a temporary file, then rename),
// keeping the mode of the file it replaces (0600 for a new file).
func (f *File) Write(data []byte) error {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(f.Path); err == nil {
		mode = st.Mode().Perm()
	}
	return f.WriteMode(data, mode)
}

// WriteMode replaces the file atomically with the given mode. When the path
// is a symlink, the file it points to is replaced and the link kept.
func (f *File) WriteMode(data []byte, mode os.FileMode) error {
	target := f.Path
	if real, err := filepath.EvalSymlinks(f.Path); err == nil {
		target = real
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".hector-config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}

// eventNames are the paths whose events in the watched directories concern
// the file: its own name (written in place, or renamed over by an editor's
// atomic save or a symlink swap), the file its symlink resolves to (real,
// when it is one), and Kubernetes' "..data" link beside it, which a
// ConfigMap update renames over. Events for any other name are ignored, so
// a log file or a capture written next to the configuration never makes it
// be read again.
func (f *File) eventNames(real string) map[string]bool {
	names := map[string]bool{
		filepath.Clean(f.Path):                        true,
		filepath.Join(filepath.Dir(f.Path), "..data"): true,
	}
	if real != "" {
		names[filepath.Clean(real)] = true
	}
	return names
}

// Watch implements Source.
func (f *File) Watch(ctx context.Context, notify func(Revision)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", f.Path, err)
	}
	defer w.Close()
	dir := filepath.Dir(f.Path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	targetDir := ""
	names := f.eventNames("")
	followTarget := func() { // also watch where a symlinked config really lives
		real, err := filepath.EvalSymlinks(f.Path)
		if err != nil {
			return
		}
		names = f.eventNames(real)
		d := filepath.Dir(real)
		if d == targetDir || d == dir {
			return
		}
		if targetDir != "" {
			_ = w.Remove(targetDir)
		}
		if w.Add(d) == nil {
			targetDir = d
		}
	}
	followTarget()
	// Re-read once now that the watch is in place: a change made between the
	// caller's Load and this point would otherwise go unseen.
	notify(f.Load(ctx))
	b := newBurst(f.Debounce)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", f.Path)
			}
			if !names[filepath.Clean(ev.Name)] {
				continue // another file in the same directory: a log, a capture, an editor's swap file
			}
			b.event()
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", f.Path)
			}
			notify(Revision{Source: f.Name(), Err: fmt.Errorf("watch %s: %w", f.Path, err)})
		case <-b.timer.C:
			b.start = time.Time{}
			followTarget()
			rev := f.Load(ctx)
			if errors.Is(rev.Err, fs.ErrNotExist) {
				continue // mid-swap or deleted: keep serving; a re-create is another event
			}
			notify(rev)
		}
	}
}

// appExts are the file names an app's document may have, the one Put
// creates first.
var appExts = []string{".yaml", ".yml", ".json"}

// FileApps is the catalog of a File: the files of the apps directory beside
// the main file (/etc/hector/hector.yaml: /etc/hector/apps/NAME.yaml, or
// .yml or .json). Files that are hidden, an editor's temporary or backup
// files, or whose base name is not an app name are ignored; two files for
// one app are an error on that app's revision. Watch uses one fsnotify
// watcher for the whole directory.
type FileApps struct {
	Dir      string
	Debounce time.Duration
	MaxBytes int64
}

// Apps returns the catalog of the apps directory beside the file.
func (f *File) Apps() Catalog {
	return &FileApps{Dir: filepath.Join(filepath.Dir(f.Path), "apps"), Debounce: f.Debounce, MaxBytes: f.MaxBytes}
}

// Name implements Catalog: "file:DIR".
func (c *FileApps) Name() string { return "file:" + c.Dir }

// AppSource implements Catalog: the app's existing file, else NAME.yaml.
func (c *FileApps) AppSource(app string) string {
	if paths := c.files(app); len(paths) == 1 {
		return "file:" + paths[0]
	}
	return "file:" + filepath.Join(c.Dir, app+".yaml")
}

// appFile returns the app a directory entry's name stands for, and false
// for files that are not an app's document.
func appFile(name string) (string, bool) {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || strings.HasSuffix(name, "~") {
		return "", false
	}
	ext := filepath.Ext(name)
	if !slices.Contains(appExts, ext) {
		return "", false
	}
	app := strings.TrimSuffix(name, ext)
	return app, CheckAppName(app) == nil
}

// files returns the paths of an app's documents that exist.
func (c *FileApps) files(app string) []string {
	var out []string
	for _, ext := range appExts {
		p := filepath.Join(c.Dir, app+ext)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

// read returns the revision of an app stored in paths (not found when a
// file vanished since it was listed).
func (c *FileApps) read(app string, paths []string) Revision {
	switch len(paths) {
	case 0:
		return appNotFound(c.AppSource(app), app)
	case 1:
	default:
		return Revision{Source: "file:" + paths[0], Err: fmt.Errorf("app %q has several files (%s): keep one", app, strings.Join(paths, ", "))}
	}
	f := &File{Path: paths[0], MaxBytes: c.MaxBytes}
	data, err := f.read()
	if errors.Is(err, fs.ErrNotExist) {
		return appNotFound(f.Name(), app)
	}
	if err != nil {
		return Revision{Source: f.Name(), Err: err}
	}
	return NewRevision(f.Name(), data)
}

// List implements Catalog.
func (c *FileApps) List(context.Context) (map[string]Revision, error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Revision{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", c.Dir, err)
	}
	paths := map[string][]string{}
	for _, e := range entries {
		if app, ok := appFile(e.Name()); ok && !e.IsDir() {
			paths[app] = append(paths[app], filepath.Join(c.Dir, e.Name()))
		}
	}
	out := make(map[string]Revision, len(paths))
	for app, ps := range paths {
		if rev := c.read(app, ps); !errors.Is(rev.Err, ErrNotFound) {
			out[app] = rev
		}
	}
	return out, nil
}

// Load implements Catalog.
func (c *FileApps) Load(_ context.Context, app string) Revision {
	if err := CheckAppName(app); err != nil {
		return Revision{Source: c.Name(), Err: err}
	}
	return c.read(app, c.files(app))
}

// Put implements Catalog: it replaces the app's file atomically (its
// existing .yml or .json file, else NAME.yaml), creating the directory
// (0700) and the file (0600) when missing.
func (c *FileApps) Put(_ context.Context, app string, data []byte) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	paths := c.files(app)
	if len(paths) > 1 {
		return fmt.Errorf("app %q has several files (%s): keep one", app, strings.Join(paths, ", "))
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(c.Dir, app+".yaml")
	if len(paths) == 1 {
		path = paths[0]
	}
	return (&File{Path: path}).Write(data)
}

// Delete implements Catalog: it removes every file of the app.
func (c *FileApps) Delete(_ context.Context, app string) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	paths := c.files(app)
	if len(paths) == 0 {
		return fmt.Errorf("app %q in %s: %w", app, c.Dir, ErrNotFound)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// burst is File's debounce: a read waits for events to stop for d, but
// happens at most 2×d after the first event of a burst.
type burst struct {
	d     time.Duration
	timer *time.Timer
	start time.Time // zero when no read is pending
}

func newBurst(d time.Duration) *burst {
	if d <= 0 {
		d = DefaultDebounce
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &burst{d: d, timer: t}
}

// event schedules the read for an event that just happened.
func (b *burst) event() {
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	wait := b.d
	if deadline := b.start.Add(2 * b.d); now.Add(wait).After(deadline) {
		wait = deadline.Sub(now)
	}
	b.timer.Reset(wait)
}

// dirWatch keeps one fsnotify watcher on dir once it exists. While it
// does not, nothing is watched and Watch looks for it every
// absentPoll: watching its parent instead would wake the watch for every
// write next to the main file (a SQLite database there writes thousands
// of times a second).
type dirWatch struct {
	w        *fsnotify.Watcher
	dir      string
	watching bool
}

// absentPoll is how often a watch looks for an apps directory that does
// not exist yet.
const absentPoll = time.Second

// arm watches dir when it exists; it reports whether it does.
func (d *dirWatch) arm() bool {
	if !d.watching && d.w.Add(d.dir) == nil {
		d.watching = true
	}
	return d.watching
}

// relevant reports whether an event concerns the directory itself or one
// of its app files; a removed or renamed directory is no longer watched.
func (d *dirWatch) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if name == d.dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			_ = d.w.Remove(d.dir)
			d.watching = false
		}
		return true
	}
	_, ok := appFile(filepath.Base(name))
	return ok && filepath.Dir(name) == d.dir
}

// Watch implements Catalog with one watcher on the apps directory (until
// it exists, a look for it every absentPoll). After each burst of events it lists
// the directory again and reports the apps whose documents changed and, as
// not found, those whose files went away.
func (c *FileApps) Watch(ctx context.Context, notify func(app string, rev Revision)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", c.Dir, err)
	}
	defer w.Close()
	dw := &dirWatch{w: w, dir: filepath.Clean(c.Dir)}
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(c.AppSource(app), app) }
	b := newBurst(c.Debounce)
	var absent <-chan time.Time // while the directory does not exist
	for armed := false; ; {
		if !armed {
			absent = nil
			if !dw.arm() {
				absent = time.After(absentPoll)
			}
			apps, err := c.List(ctx)
			if err != nil {
				return err
			}
			report.all(apps, gone)
			armed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", c.Dir)
			}
			if dw.relevant(ev) {
				b.event()
			}
		case err, ok := <-w.Errors:
			if !ok {
				err = errors.New("watcher closed")
			}
			return fmt.Errorf("watch %s: %w", c.Dir, err)
		case <-b.timer.C:
			b.start, armed = time.Time{}, false
		case <-absent:
			armed = false
		}
	}
}
