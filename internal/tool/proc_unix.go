//go:build unix && !linux

package tool

import (
	"os/exec"
	"syscall"
)

// Without Linux's subreaper and /proc, a command runs in its own process
// group and the group is what gets killed: on timeout, and when the
// command exits, whatever it left running in the group. A process that
// leaves the group (setsid) is not found.
type tree struct{ cmd *exec.Cmd }

func newTree(cmd *exec.Cmd, _ string) *tree {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return &tree{cmd: cmd}
}

func (t *tree) started() {}

func (t *tree) finish() { _ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL) }

// kill kills the process group now.
func (t *tree) kill() { _ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL) }
