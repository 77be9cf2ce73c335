//go:build !unix

package tool

import "os/exec"

// Elsewhere a timeout kills the command's process (exec.CommandContext's
// default), not what it started.
type tree struct{ cmd *exec.Cmd }

func newTree(cmd *exec.Cmd, _ string) *tree { return &tree{cmd: cmd} }

// kill kills the process.
func (t *tree) kill() { _ = t.cmd.Process.Kill() }

func (*tree) started() {}

func (*tree) finish() {}
