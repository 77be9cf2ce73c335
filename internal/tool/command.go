package tool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
)

// command runs an allowlisted program. The model passes one argument,
// "command", a command line split into argv like a shell would split words
// (quotes and backslashes honoured) but run without a shell unless the
// config sets shell: true.
type command struct {
	name string
	cfg  config.Tool
}

func newCommand(name string, cfg config.Tool) *command { return &command{name: name, cfg: cfg} }

func (c *command) Spec() llm.ToolSpec {
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

func (c *command) Call(ctx context.Context, args map[string]any) (string, error) {
	line, err := stringArg(args, "command")
	if err != nil {
		return "", err
	}
	argv, err := splitWords(line)
	if err != nil {
		return "", err
	}
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	if !slices.Contains(c.cfg.AllowedCommands, argv[0]) {
		return "", fmt.Errorf("command %q is not allowed; allowed: %s", argv[0], strings.Join(c.cfg.AllowedCommands, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	var cmd *exec.Cmd
	if c.cfg.Shell {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", line)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	cmd.Dir = c.cfg.WorkingDir
	if key := IdempotencyKey(ctx); key != "" {
		cmd.Env = append(os.Environ(), "HECTOR_IDEMPOTENCY_KEY="+key)
	}
	killGroup(cmd)
	cmd.WaitDelay = time.Second // do not wait on pipes held by orphans
	out := &capped{max: c.cfg.MaxOutputBytes}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return "", fmt.Errorf("timed out after %s; output so far: %s", c.cfg.Timeout.D(), out)
	case err != nil:
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return out.String(), nil
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
