package testsvc

import (
	"fmt"
	"os"
)

// Program is a T for programs outside tests (the benchmarks under bench/),
// so they can start the same servers. Fatal and Skip print the message,
// run the cleanups and exit 1; Close runs the cleanups.
type Program struct{ cleanups []func() }

func (p *Program) Helper()                   {}
func (p *Program) Fatal(args ...any)         { p.fail(fmt.Sprint(args...)) }
func (p *Program) Fatalf(f string, a ...any) { p.fail(fmt.Sprintf(f, a...)) }
func (p *Program) Skip(args ...any)          { p.fail(fmt.Sprint(args...)) }
func (p *Program) Cleanup(f func())          { p.cleanups = append(p.cleanups, f) }
func (p *Program) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (p *Program) Failed() bool              { return false }

// TempDir makes a directory that Close removes.
func (p *Program) TempDir() string {
	d, err := os.MkdirTemp("", "hector-bench-")
	if err != nil {
		p.fail(err.Error())
	}
	p.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Close runs the cleanups, last first: servers stop, directories go.
func (p *Program) Close() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	p.cleanups = nil
}

func (p *Program) fail(msg string) {
	fmt.Fprintln(os.Stderr, os.Args[0]+":", msg)
	p.Close()
	os.Exit(1)
}
