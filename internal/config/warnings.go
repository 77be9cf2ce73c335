package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Warnings are problems that do not stop a document from applying. They
// are computed from the validated, defaulted configuration and the
// document's positions, in the one step both Parse and Parser.Parse end
// with (accept), so both report the same warnings.

// accept completes a valid document: defaults, then warnings, which are
// the normalisations the decoder made (notes) and those of warnings.
func (d *Document) accept(cfg *Config, notes Errors) {
	applyDefaults(cfg)
	d.Config = cfg
	for _, n := range notes {
		n.warn = false
		d.Normalized = append(d.Normalized, n)
	}
	if d.Normalized != nil {
		d.Normalized = d.Normalized.sorted()
	}
	d.Warnings = append(notes, warnings(cfg, d.pos)...)
	if d.Warnings == nil {
		return
	}
	for i := range d.Warnings {
		d.Warnings[i].warn = false
	}
	d.Warnings = d.Warnings.sorted()
}

// Migratable reports whether hector config migrate would change what the
// document says: it uses an old spelling, or a plain-string API key.
func (d *Document) Migratable() bool {
	return d.Normalized != nil || slices.ContainsFunc(d.Config.Server.Auth.APIKeys, func(k APIKey) bool { return k.Plain })
}

// partWarnings splits decode errors into errors and normalisation warnings.
func partWarnings(decoded Errors) (errs, notes Errors) {
	for _, e := range decoded {
		if e.warn {
			notes = append(notes, e)
		} else {
			errs = append(errs, e)
		}
	}
	return errs, notes
}

// Warning formats e as a reload outcome lists a warning:
// "PATH (line L:C): MESSAGE", or "PATH: MESSAGE" without a position.
func (e Error) Warning() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d:%d): %s", e.Path, e.Line, e.Column, e.Message)
	}
	return e.Path + ": " + e.Message
}

// warnings checks a valid, defaulted config for what is allowed but
// probably unintended; accept sorts and bounds the result.
func warnings(c *Config, pos posLookup) Errors {
	v := &validator{pos: pos}
	for _, name := range sortedKeys(c.Tools) {
		t := c.Tools[name]
		if t.Type != "command" {
			continue
		}
		if what := launcher(t.Command); what != "" && slices.ContainsFunc(t.Args, urlParam.MatchString) {
			v.fail(childPath("tools", name)+".command", "tool %s runs %q, which %s, with the model's values in its args: through them the model can run any program", name, t.Command, what)
		}
		if t.Shell {
			v.fail(childPath("tools", name)+".shell", "tool %s runs its command line through /bin/sh: the allowlist checks only the first word, so the model can run any program after a ; or |", name)
		}
		for i, prog := range t.AllowedCommands {
			if what := launcher(prog); what != "" {
				v.fail(fmt.Sprintf("%s.allowed_commands[%d]", childPath("tools", name), i),
					"tool %s allows %q, which %s: through it the model can run any program, so the allowlist no longer limits what runs", name, prog, what)
			}
		}
	}
	v.authWarnings(c.Server.Auth)
	return v.errs
}

// launchers are programs that run other programs: given as an argument,
// as a script, or through an option. Allowing one in a command tool
// allows everything.
var launchers = func() map[string]string {
	m := map[string]string{}
	for what, names := range map[string]string{
		"is a shell":        "sh bash dash zsh ksh mksh pdksh oksh yash ash csh tcsh fish rc es elvish nu xonsh pwsh powershell busybox toybox",
		"is an interpreter": "perl python pypy ruby irb node nodejs deno bun php lua luajit tclsh wish expect julia Rscript osascript awk gawk mawk nawk jshell",
		"runs the program named in its arguments": "env xargs nice ionice nohup timeout sudo su doas pkexec runuser setpriv sg newgrp setsid stdbuf chroot " +
			"unshare nsenter chrt taskset flock strace ltrace gdb script watch time exec command parallel systemd-run firejail bwrap proot capsh entr",
		"can run commands through its options": "find tar git make sed vi vim nvim ex view emacs less more man ssh rsync scp zip docker podman kubectl",
	} {
		for _, n := range strings.Fields(names) {
			m[n] = what
		}
	}
	return m
}()

// launcher returns what makes prog a launcher ("is a shell", …), or "".
// A path is judged by its last element and a version suffix is ignored:
// /usr/bin/python3.12 is python.
func launcher(prog string) string {
	base := path.Base(prog)
	if what, ok := launchers[base]; ok {
		return what
	}
	return launchers[strings.TrimRight(base, "0123456789.")]
}
