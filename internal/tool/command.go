package tool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// command runs a program, in one of two ways. With allowed_commands the
// model passes one argument, "command", a command line split into argv like
// a shell would split words (quotes and backslashes honoured) but run
// without a shell unless the config sets shell: true, and its first word
// must be allowlisted. With command (a fixed command) the program and its
// args are the configuration's; the model supplies only the values of the
// {name} placeholders in args, each within its one argument.
type command struct {
	name   string
	cfg    config.Tool
	params []string // the fixed command's placeholders
}

func newCommand(name string, cfg config.Tool) *command {
	c := &command{name: name, cfg: cfg}
	if cfg.Command != "" {
		for _, a := range cfg.Args {
			for _, p := range config.URLParams(a) {
				if !slices.Contains(c.params, p) {
					c.params = append(c.params, p)
				}
			}
		}
	}
	return c
}

func (c *command) Spec() llm.ToolSpec {
	if c.cfg.Command != "" {
		return c.fixedSpec()
	}
	desc := c.cfg.Description
	if desc == "" {
		desc = "Runs a command."
	}
	desc += " Allowed programs: " + strings.Join(c.cfg.AllowedCommands, ", ") + "."
	return llm.ToolSpec{Name: c.name, Description: desc, Parameters: map[string]any{
		"type": "object",
		"properties": map[string]any{
			"command": map[string]any{"type": "string", "description": "The command line to run, e.g. \"" + c.cfg.AllowedCommands[0] + "\"."},
		},
		"required": []string{"command"},
	}}
}

// fixedSpec describes a fixed command: its placeholders are its parameters.
func (c *command) fixedSpec() llm.ToolSpec {
	desc := c.cfg.Description
	if desc == "" {
		desc = "Runs " + strings.Join(append([]string{c.cfg.Command}, c.cfg.Args...), " ") + "."
	}
	props := map[string]any{}
	for _, p := range c.params {
		props[p] = map[string]any{"type": "string"}
	}
	return llm.ToolSpec{Name: c.name, Description: desc, Parameters: map[string]any{
		"type": "object", "properties": props, "required": append([]string{}, c.params...),
	}}
}

// fixedArgv fills the fixed command's placeholders. A value may not make
// an argument start with '-', where the program would read it as an option.
func (c *command) fixedArgv(args map[string]any) ([]string, error) {
	argv := []string{c.cfg.Command}
	for _, a := range c.cfg.Args {
		var b strings.Builder
		last := 0
		for _, m := range config.URLParamIndex(a) {
			v, err := stringArg(args, a[m[2]:m[3]])
			if err != nil {
				return nil, err
			}
			b.WriteString(a[last:m[0]])
			b.WriteString(v)
			last = m[1]
		}
		b.WriteString(a[last:])
		if arg := b.String(); strings.HasPrefix(arg, "-") && !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("the values of %s may not make an argument start with '-'", strings.Join(config.URLParams(a), ", "))
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

func (c *command) Call(ctx context.Context, args map[string]any) (string, error) {
	argv, err := c.argv(args)
	if err != nil {
		return "", err
	}
	return c.run(ctx, argv)
}

// argv is what a call runs: the fixed command with its placeholders
// filled, or the model's allowlisted command line (through /bin/sh -c with
// shell: true).
func (c *command) argv(args map[string]any) ([]string, error) {
	if c.cfg.Command != "" {
		return c.fixedArgv(args)
	}
	line, err := stringArg(args, "command")
	if err != nil {
		return nil, err
	}
	argv, err := splitWords(line)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	if !slices.Contains(c.cfg.AllowedCommands, argv[0]) {
		return nil, fmt.Errorf("command %q is not allowed; allowed: %s", argv[0], strings.Join(c.cfg.AllowedCommands, ", "))
	}
	if c.cfg.Shell {
		return []string{"/bin/sh", "-c", line}, nil
	}
	return argv, nil
}

// run runs argv in the tool's directory and environment, within its
// timeout and with its output capped, and waits for it and the processes
// it started.
func (c *command) run(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.cfg.WorkingDir
	marker := "HECTOR_TOOL_RUN=" + rand.Text()
	cmd.Env = append(c.environ(IdempotencyKey(ctx)), marker)
	procs := newTree(cmd, marker)
	cmd.WaitDelay = time.Second // do not wait long on pipes held by processes that escaped
	out := &capped{max: c.cfg.MaxOutputBytes}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Start()
	if err == nil {
		procs.started()
		err = cmd.Wait()
		procs.finish()
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return "", fmt.Errorf("timed out after %s; output so far: %s", c.cfg.Timeout.D(), out)
	case err != nil:
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return out.String(), nil
}

// inherited are the only variables a command takes from the server's
// environment, with the value it gets when the server has none ("": the
// variable is left unset).
var inherited = []struct{ name, fallback string }{
	{"PATH", "/usr/local/bin:/usr/bin:/bin"},
	{"HOME", "/"},
	{"LANG", "C.UTF-8"},
	{"TZ", ""},
}

// environ is a command's environment but for the run's HECTOR_TOOL_RUN
// marker: inherited, then the tool's env, then the idempotency key (when
// key is not ""). Nothing else of the server's environment, which holds
// LLM and admin keys, reaches the program.
func (c *command) environ(key string) []string { return environ(c.cfg.Env, key) }

// environ is a program's environment: inherited, then extra, then the
// idempotency key (when key is not "").
func environ(extra map[string]string, key string) []string {
	env := make([]string, 0, len(inherited)+len(extra)+1)
	for _, v := range inherited {
		if val, ok := os.LookupEnv(v.name); ok && val != "" {
			env = append(env, v.name+"="+val)
		} else if v.fallback != "" {
			env = append(env, v.name+"="+v.fallback)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		env = append(env, name+"="+extra[name]) // exec keeps the last of a name
	}
	if key != "" {
		env = append(env, "HECTOR_IDEMPOTENCY_KEY="+key)
	}
	return env
}

// splitWords splits a command line into words: whitespace separates,
// single quotes keep everything literal, double quotes and backslashes work
// as in a POSIX shell. Nothing is expanded.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case quote == '"':
			if ch == '"' {
				quote = 0
			} else if ch == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in command", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
