package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
)

const releaseVersion = "v9.9.9-test"

var (
	releaseOnce sync.Once
	releasePath string
	releaseErr  error
)

// releaseBinary runs scripts/build once per test run, into the directory
// buildBinary made (which TestMain removes).
func releaseBinary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(buildBinary(t)), "release")
	releaseOnce.Do(func() {
		releasePath = filepath.Join(dir, "hector")
		cmd := exec.Command("../../scripts/build")
		cmd.Env = append(os.Environ(), "OUT="+releasePath, "VERSION="+releaseVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			releaseErr = fmt.Errorf("scripts/build: %v\n%s", err, out)
		}
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return releasePath
}

// TestBuildScriptStaticBinary: scripts/build stamps VERSION, honours OUT
// and makes a static binary without the build machine's paths.
func TestBuildScriptStaticBinary(t *testing.T) {
	bin := releaseBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || string(out) != "hector "+releaseVersion+"\n" {
		t.Fatalf("version: %v %q", err, out)
	}
	if runtime.GOOS != "linux" {
		t.Skipf("static check reads ELF; GOOS is %s", runtime.GOOS)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (%v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -s missing")
	}
	repo, _ := filepath.Abs("../..")
	if b, err := os.ReadFile(bin); err != nil || bytes.Contains(b, []byte(repo+"/internal/")) {
		t.Errorf("binary contains the build machine's path %s: -trimpath missing (%v)", repo, err)
	}
}

// serveFlags returns the flags `hector serve` accepts, from its -h output.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	_, _, help := runCLI("serve", "-h")
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(help, -1) {
		flags[m[1]] = true
	}
	if !flags["config"] || !flags["database"] || !flags["config-cache"] {
		t.Fatalf("serve -h lists no flags:\n%s", help)
	}
	return flags
}

// checkServeArgs checks args is `serve` with flags `hector serve` accepts.
func checkServeArgs(t *testing.T, args []string) {
	t.Helper()
	if len(args) < 2 || args[1] != "serve" || !filepath.IsAbs(args[0]) {
		t.Fatalf("want /ABSOLUTE/hector serve ..., got %q", args)
	}
	known := serveFlags(t)
	for _, a := range args[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			if name, _, _ = strings.Cut(name, "="); !known[name] {
				t.Errorf("hector serve has no --%s", name)
			}
		}
	}
}

// unitFile is a systemd unit: section, key, values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u, section := unitFile{}, ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %q", line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// TestSystemdUnit: the unit's hardening, reload and stop settings, its
// ExecStart flags, and systemd-analyze verify with the binary in place.
func TestSystemdUnit(t *testing.T) {
	const path = "../../deploy/systemd/hector.service"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, string(b))
	for k, want := range map[string]string{"Type": "simple", "User": "hector", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "ReadWritePaths": "/var/lib/hector",
		"StateDirectory": "hector", "Restart": "on-failure", "EnvironmentFile": "-/etc/hector/hector.env",
		"ExecReload": "/bin/kill -HUP $MAINPID"} {
		if got := u.get("Service", k); got != want {
			t.Errorf("[Service] %s=%q, want %q", k, got, want)
		}
	}
	if n, err := strconv.Atoi(u.get("Service", "LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("LimitNOFILE=%q", u.get("Service", "LimitNOFILE"))
	}
	stop := u.get("Service", "TimeoutStopSec")
	if _, err := strconv.Atoi(stop); err == nil {
		stop += "s"
	}
	if d, err := time.ParseDuration(stop); err != nil || d <= config.DefaultShutdownTimeout {
		t.Errorf("TimeoutStopSec=%q must exceed the default shutdown_timeout %v", stop, config.DefaultShutdownTimeout)
	}
	if u.get("Install", "WantedBy") == "" {
		t.Error("no [Install] WantedBy=")
	}
	exec := u.get("Service", "ExecStart")
	args := strings.Fields(exec)
	checkServeArgs(t, args)
	for _, want := range []string{"--config /etc/hector/hector.yaml", "--database sqlite:///var/lib/hector/hector.db",
		"--config-cache /var/lib/hector/config.last-good"} {
		if !strings.Contains(exec, want) {
			t.Errorf("ExecStart lacks %q: %s", want, exec)
		}
	}
	verifyUnit(t, string(b), args[0])
}

// verifyUnit runs systemd-analyze verify on the unit, with its binary
// path replaced by the release build, and fails on anything it says
// about the unit.
func verifyUnit(t *testing.T, unit, binary string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: unit not verified (apt-get install systemd)")
	}
	bin := releaseBinary(t)
	dir := t.TempDir()
	placed := filepath.Join(dir, "bin", "hector")
	if err := os.MkdirAll(filepath.Dir(placed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, placed); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "hector.service")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(unit, "ExecStart="+binary, "ExecStart="+placed)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", file).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "hector.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil {
		t.Logf("systemd-analyze verify exited %v:\n%s", err, out)
	}
}

// decodePlist decodes an XML property list into Go values: dict as
// map[string]any, array as []any, string, int64 and bool. It returns the
// DOCTYPE directive and the plist version attribute too.
func decodePlist(r io.Reader) (doctype, version string, root any, err error) {
	d := xml.NewDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			return "", "", nil, err
		}
		switch tok := tok.(type) {
		case xml.Directive:
			doctype = string(tok)
		case xml.StartElement:
			if tok.Name.Local != "plist" {
				return "", "", nil, fmt.Errorf("root element <%s>, want <plist>", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if a.Name.Local == "version" {
					version = a.Value
				}
			}
			start, err := nextElement(d)
			if err != nil || start == nil {
				return "", "", nil, fmt.Errorf("empty plist (%v)", err)
			}
			root, err = plistValue(d, *start)
			return doctype, version, root, err
		}
	}
}

// nextElement returns the next start element, or nil at an end element.
func nextElement(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return &tok, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) > 0 {
				return nil, fmt.Errorf("stray text %q", tok)
			}
		}
	}
}

func plistValue(d *xml.Decoder, start xml.StartElement) (any, error) {
	switch start.Name.Local {
	case "string", "integer":
		var s string
		if err := d.DecodeElement(&s, &start); err != nil {
			return nil, err
		}
		if start.Name.Local == "integer" {
			return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		}
		return s, nil
	case "true", "false":
		return start.Name.Local == "true", d.Skip()
	case "array":
		list := []any{}
		for {
			el, err := nextElement(d)
			if err != nil || el == nil {
				return list, err
			}
			v, err := plistValue(d, *el)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case "dict":
		return plistDict(d)
	}
	return nil, fmt.Errorf("unsupported plist element <%s>", start.Name.Local)
}

func plistDict(d *xml.Decoder) (map[string]any, error) {
	m := map[string]any{}
	for {
		el, err := nextElement(d)
		if err != nil || el == nil {
			return m, err
		}
		var key string
		if el.Name.Local != "key" {
			return nil, fmt.Errorf("dict has <%s> where a <key> belongs", el.Name.Local)
		}
		if err := d.DecodeElement(&key, el); err != nil {
			return nil, err
		}
		if el, err = nextElement(d); err != nil || el == nil {
			return nil, fmt.Errorf("dict key %q has no value (%v)", key, err)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("dict key %q twice", key)
		}
		if m[key], err = plistValue(d, *el); err != nil {
			return nil, err
		}
	}
}

// TestLaunchdPlist: the launchd job is a well-formed plist that starts
// `hector serve` with real flags, keeps it running, and logs outside the
// configuration's (watched) directory.
func TestLaunchdPlist(t *testing.T) {
	f, err := os.Open("../../deploy/launchd/com.hector.agent.plist")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doctype, version, root, err := decodePlist(f)
	if err != nil {
		t.Fatal(err)
	}
	if doctype != `DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"` || version != "1.0" {
		t.Fatalf("DOCTYPE %q, plist version %q", doctype, version)
	}
	job, ok := root.(map[string]any)
	if !ok {
		t.Fatalf("root is %T, want a dict", root)
	}
	if job["Label"] != "com.hector.agent" || job["RunAtLoad"] != true || job["WorkingDirectory"] != "/usr/local/var/hector" {
		t.Errorf("Label %v, RunAtLoad %v, WorkingDirectory %v", job["Label"], job["RunAtLoad"], job["WorkingDirectory"])
	}
	switch k := job["KeepAlive"].(type) {
	case bool:
		if !k {
			t.Error("KeepAlive is false")
		}
	case map[string]any:
		if k["SuccessfulExit"] != false {
			t.Errorf("KeepAlive %v: want a restart after a failed exit", k)
		}
	default:
		t.Errorf("KeepAlive is %T", k)
	}
	var args []string
	list, _ := job["ProgramArguments"].([]any)
	for _, a := range list {
		s, ok := a.(string)
		if !ok {
			t.Fatalf("ProgramArguments holds %T", a)
		}
		args = append(args, s)
	}
	checkServeArgs(t, args)
	configDir := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			configDir = filepath.Dir(args[i+1])
		}
	}
	if configDir != "/usr/local/etc/hector" {
		t.Fatalf("--config in %q, want /usr/local/etc/hector/hector.yaml", configDir)
	}
	for _, k := range []string{"StandardOutPath", "StandardErrorPath"} {
		p, _ := job[k].(string)
		if !strings.HasPrefix(p, "/usr/local/var/log/hector/") || strings.HasPrefix(p, configDir+"/") {
			t.Errorf("%s %q: want a file under /usr/local/var/log/hector/, outside %s", k, p, configDir)
		}
	}
}

// TestLaunchdPlistDecoder: the decoder refuses what launchd would.
func TestLaunchdPlistDecoder(t *testing.T) {
	_, _, v, err := decodePlist(strings.NewReader(`<plist version="1.0"><dict><key>a</key><array><string>x</string><integer>3</integer><false/></array></dict></plist>`))
	if m, ok := v.(map[string]any); err != nil || !ok || fmt.Sprint(m["a"]) != "[x 3 false]" {
		t.Fatalf("%#v %v", v, err)
	}
	for _, bad := range []string{`<dict/>`, `<plist><dict><string>x</string></dict></plist>`,
		`<plist><dict><key>a</key></dict></plist>`, `<plist><dict><key>a</key><true/><key>a</key><true/></dict></plist>`,
		`<plist><data>AA==</data></plist>`, `<plist><dict><key>a</key><string>x</string>`} {
		if _, _, _, err := decodePlist(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: decoded", bad)
		}
	}
}
