package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	debounce := f.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var burstStart time.Time // zero when no read is pending
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
			now := time.Now()
			if burstStart.IsZero() {
				burstStart = now
			}
			wait := debounce
			if deadline := burstStart.Add(2 * debounce); now.Add(wait).After(deadline) {
				wait = deadline.Sub(now)
			}
			timer.Reset(wait)
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", f.Path)
			}
			notify(Revision{Source: f.Name(), Err: fmt.Errorf("watch %s: %w", f.Path, err)})
		case <-timer.C:
			burstStart = time.Time{}
			followTarget()
			rev := f.Load(ctx)
			if errors.Is(rev.Err, fs.ErrNotExist) {
				continue // mid-swap or deleted: keep serving; a re-create is another event
			}
			notify(rev)
		}
	}
}
