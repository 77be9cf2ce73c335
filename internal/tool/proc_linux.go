//go:build linux

package tool

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux a command's processes are found and killed wherever they went.
// A process belongs to the call when, in /proc, it
//
//   - descends from the command's process (its PPid chain leads there), or
//   - is in the command's process group, or
//   - started after the command and has the call's HECTOR_TOOL_RUN marker
//     in its environment (this finds what left the group and the session,
//     setsid or a double fork, and lost its parent),
//
// or descends from one that does. Killing stops them all first (SIGSTOP,
// so none forks behind the scan), rescans until nothing new appears, then
// sends SIGKILL, each signal through a pidfd after checking the process's
// start time, so a recycled pid is never hit. That happens when the call
// times out and again when the command exits: a call leaves nothing
// running.
//
// The server makes itself a child subreaper (once), so orphans of
// commands are re-parented to it rather than to init, and it reaps them
// itself: a killed process as soon as /proc shows it as the server's
// zombie with the recorded start time (wait4 on that pid), and any other
// zombie child on SIGCHLD, but only while the Go runtime holds a pidfd
// for each child it started (Go 1.23 and later do, where the kernel has
// pidfds) and none for that zombie, so a child some exec.Cmd is waiting
// for is never taken from it.

var subreaper = sync.OnceValue(func() bool {
	if unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != nil {
		return false
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGCHLD)
	go func() {
		for range c {
			sweep()
		}
	}()
	return true
})

// pidfds is set once a command's process was seen held by a pidfd of the
// Go runtime: then an orphan's zombie can be told from a child an
// exec.Cmd waits for.
var pidfds atomic.Bool

// running holds the pids of the commands being run, whose zombies are
// os/exec's to reap: sweep passes them over without looking further.
var running sync.Map

// tree is the processes of one command run.
type tree struct {
	cmd     *exec.Cmd
	marker  []byte // "HECTOR_TOOL_RUN=…"
	self    int
	watched chan struct{} // closed once the exit watcher has killed what was left

	mu    sync.Mutex
	pid   int
	start uint64
	dead  map[int]uint64 // killed processes (not the command's own) to reap: pid -> start time
}

// newTree runs cmd in its own process group; a timeout kills every
// process of the run (not just the group).
func newTree(cmd *exec.Cmd, marker string) *tree {
	subreaper()
	t := &tree{cmd: cmd, marker: []byte(marker), self: os.Getpid(), watched: make(chan struct{}), dead: map[int]uint64{}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		t.kill()
		return nil
	}
	return t
}

// started records the command's process once cmd.Start succeeded, and
// watches for its exit: then whatever it left running is killed, which
// also closes the output pipes those processes held.
func (t *tree) started() {
	t.mu.Lock()
	t.init()
	t.mu.Unlock()
	running.Store(t.pid, true)
	if !pidfds.Load() && heldPids()[t.pid] {
		pidfds.Store(true)
	}
	go func() {
		defer close(t.watched)
		var info unix.Siginfo
		for {
			// WNOWAIT leaves the exit status to os/exec.
			err := unix.Waitid(unix.P_PID, t.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		t.kill()
	}()
}

// finish runs after cmd.Wait: it kills anything still left and reaps what
// was killed, waiting up to 2s (then the rest is reaped in the background).
func (t *tree) finish() {
	<-t.watched
	running.Delete(t.pid) // waited for: no longer a zombie
	t.kill()
	t.mu.Lock()
	dead := t.dead
	t.dead = map[int]uint64{}
	t.mu.Unlock()
	if left := reap(t.self, dead, time.Now().Add(2*time.Second)); len(left) > 0 {
		go reap(t.self, left, time.Now().Add(5*time.Minute))
	}
	sweep()
}

// init records the command's process: its pid and start time. The caller
// holds t.mu.
func (t *tree) init() {
	if t.pid != 0 {
		return
	}
	t.pid = t.cmd.Process.Pid
	if p, ok := readStat(t.pid); ok {
		t.start = p.start // not waited for yet (or the read fails), so it is ours
	}
}

// kill stops, then kills, every process of the run.
func (t *tree) kill() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	stopped := map[int]uint64{}
	unsure := 0
	for range 100 {
		fresh := false
		found, uncertain := t.find()
		for pid, start := range found {
			if _, ok := stopped[pid]; !ok {
				stopped[pid] = start
				send(pid, start, unix.SIGSTOP)
				fresh = true
			}
		}
		if uncertain && unsure < 25 {
			unsure++ // a process in the middle of an exec shows no environment for a moment
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if !fresh {
			break
		}
	}
	for pid, start := range stopped {
		send(pid, start, unix.SIGKILL)
		if pid != t.pid {
			t.dead[pid] = start
		}
	}
}

// find returns the live processes of the run, pid -> start time, and
// whether a process that may be one showed an empty environment.
func (t *tree) find() (found map[int]uint64, uncertain bool) {
	procs := readProcs()
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	// The command's pid (and so its group id) is ours while the process
	// (alive or a zombie) has the start time we recorded, or while no
	// process holds that pid: a pid in use as a group id is not reused.
	cmdProc, taken := procs[t.pid]
	ours := taken && cmdProc.start == t.start
	group := ours || !taken
	var roots []int
	if ours {
		roots = append(roots, t.pid)
	}
	for pid, p := range procs {
		switch {
		case pid == t.self || pid == t.pid:
		case group && p.pgrp == t.pid:
			roots = append(roots, pid)
		case p.start >= t.start && p.state != 'Z' && p.flags&pfKthread == 0:
			switch t.hasMarker(pid) {
			case marked:
				roots = append(roots, pid)
			case empty:
				uncertain = true
			}
		}
	}
	found = map[int]uint64{}
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if _, seen := found[pid]; seen || pid == t.self {
			continue
		}
		found[pid] = procs[pid].start
		roots = append(roots, children[pid]...)
	}
	return found, uncertain
}

const (
	unmarked = iota
	marked
	empty // no environment to read: an exec in progress, or a process started without one
)

func (t *tree) hasMarker(pid int) int {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	switch {
	case err != nil:
		return unmarked // gone, or another user's
	case len(env) == 0:
		return empty
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, t.marker) {
			return marked
		}
	}
	return unmarked
}

// reap waits for each killed process re-parented to self (pid -> start
// time) until deadline, and returns those still not gone.
func reap(self int, pids map[int]uint64, deadline time.Time) map[int]uint64 {
	delay := time.Millisecond
	for len(pids) > 0 {
		for pid, start := range pids {
			p, ok := readStat(pid)
			switch {
			case !ok || p.start != start:
				delete(pids, pid) // gone: reaped by its own parent, or by us before
			case p.state == 'Z' && p.ppid == self:
				var ws unix.WaitStatus
				if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid {
					delete(pids, pid)
				}
			}
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
	return pids
}

// sweep reaps the zombie children of the server that no pidfd of the
// runtime holds: orphans of commands re-parented to the server.
func sweep() {
	if !pidfds.Load() {
		return
	}
	self := os.Getpid()
	var zombies []int
	for _, pid := range childPids(self) {
		if _, cmd := running.Load(pid); cmd {
			continue
		}
		if p, ok := readStat(pid); ok && p.state == 'Z' && p.ppid == self {
			zombies = append(zombies, pid)
		}
	}
	if len(zombies) == 0 {
		return
	}
	held := heldPids()
	for _, pid := range zombies {
		if !held[pid] {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// childPids lists the children of pid, from each of its threads'
// children file, or from every process's stat where those files are
// missing.
func childPids(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tids, err := os.ReadDir(dir)
	var out []int
	for _, tid := range tids {
		b, err := os.ReadFile(dir + "/" + tid.Name() + "/children")
		if err != nil {
			out = nil
			break
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	if err == nil && out != nil {
		return out
	}
	for c, p := range readProcs() {
		if p.ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// heldPids returns the pids this process holds pidfds for.
func heldPids() map[int]bool {
	held := map[int]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err != nil || link != "anon_inode:[pidfd]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(info, []byte{'\n'}) {
			if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
				if pid, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil {
					held[pid] = true
				}
			}
		}
	}
	return held
}

// send sends sig to pid if it is still the process that started at
// start.
func send(pid int, start uint64, sig unix.Signal) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if err != unix.ENOSYS {
			return // gone
		}
		if p, ok := readStat(pid); ok && p.start == start {
			_ = unix.Kill(pid, sig)
		}
		return
	}
	defer unix.Close(fd)
	if p, ok := readStat(pid); ok && p.start == start { // the pidfd holds this very process
		_ = unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

type procStat struct {
	state      byte
	ppid, pgrp int
	flags      uint64
	start      uint64 // clock ticks after boot
}

const pfKthread = 0x00200000 // PF_KTHREAD in flags: a kernel thread

// readProcs reads every process's stat.
func readProcs() map[int]procStat {
	procs := map[int]procStat{}
	d, err := os.Open("/proc")
	if err != nil {
		return procs
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			procs[pid] = p
		}
	}
	return procs
}

// readStat parses /proc/PID/stat: "pid (comm) state ppid pgrp session
// tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
// priority nice threads itrealvalue starttime …".
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	pgrp, _ := strconv.Atoi(string(f[2]))
	flags, _ := strconv.ParseUint(string(f[6]), 10, 64)
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp, flags: flags, start: start}, true
}
