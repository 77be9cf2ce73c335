//go:build !unix

package tool

import "os/exec"

// killGroup relies on exec.CommandContext's default: kill the process.
func killGroup(*exec.Cmd) {}
