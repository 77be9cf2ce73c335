package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
)

// migrateCmd prints a document in the canonical schema (hector config
// migrate FILE), or replaces the file with it (--write). What changed goes
// to stderr, one line per normalisation, so stdout is the document alone.
func migrateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.Bool("write", false, "replace FILE with the migrated document (its mode is kept)")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: hector config migrate FILE [--write]")
		return 2
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, "hector config migrate:", err)
		return 1
	}
	out, changed, errs := config.Migrate(data, os.LookupEnv)
	if errs != nil {
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s:%s\n", file, e.Error())
		}
		fmt.Fprintf(stderr, "%d error(s): not migrated\n", len(errs))
		return 1
	}
	for _, w := range changed {
		fmt.Fprintf(stderr, "%s:%d:%d: %s: %s\n", file, w.Line, w.Column, w.Path, w.Message)
	}
	if !*write {
		_, _ = stdout.Write(out)
		return 0
	}
	if err := (&source.File{Path: file}).Write(out); err != nil { // atomic, keeping the file's mode
		fmt.Fprintln(stderr, "hector config migrate:", err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: migrated (%d change(s))\n", file, len(changed))
	return 0
}
