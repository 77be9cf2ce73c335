package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A migrated document parses to the same configuration as the original,
// with none of its normalisation warnings, and migrating it again changes
// nothing: for every seed document and every normalisation of the table.
func TestMigrateRoundTrip(t *testing.T) {
	vars := map[string]string{"OPENAI_API_KEY": "sk-x", "API_KEY_1": "seed-key-one-0123456789", "API_KEY_2": "seed-key-two-0123456789", "DB_PASSWORD": "pass-word"}
	docs := map[string]string{}
	seeds, _ := filepath.Glob("../../examples/seeds/*.*")
	for _, f := range seeds {
		if strings.HasSuffix(f, ".md") || strings.Contains(f, "pointer") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = string(b)
	}
	docs["every spelling"] = "# the original Hector's spellings\nversion: \"1.0\"\nllms:\n  e:\n    type: echo # the offline provider\n" +
		"agents:\n  a:\n    type: native\n    name: Support\n    llm: e\n    tools: [search, t]\n" +
		"tools:\n  t:\n    type: command\n    command: ./deploy.sh\n    working_directory: /srv\n" +
		"databases:\n  main: {driver: postgres, host: db, database: hector, user: hector, password: 'lit@ral'}\n" +
		"storage:\n  tasks: {backend: sql, database: main}\n  sessions: {backend: sql, database: main}\n" +
		"server:\n  observability:\n    metrics: {enabled: false}\n  auth:\n    enabled: true\n    api_keys: [\"${API_KEY_1}\"]\n" +
		"observability: {}\ndatabase: {}\nname: ${HECTOR_TEST_UNSET_NAME:deployment}\n"
	docs["in-memory stores"] = minimal + "server:\n  tasks: {backend: inmemory}\nstorage:\n  sessions: {backend: memory}\n"
	if len(docs) < 12 {
		t.Fatalf("only %d documents", len(docs))
	}
	lookup := env(vars)
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			before, errs := Parse([]byte(doc), lookup)
			if errs != nil {
				t.Fatal(errs)
			}
			out, changed, errs := Migrate([]byte(doc), env(nil)) // the machine need not have the secrets
			if errs != nil {
				t.Fatal(errs)
			}
			if refs := strings.Contains(string(out), "${DB_PASSWORD}@"); len(changed) != len(before.Normalized)+map[bool]int{true: 1}[refs] {
				t.Errorf("migrate lists %v, parse normalised %v", changed, before.Normalized)
			}
			after, errs := Parse(out, lookup)
			if errs != nil {
				t.Fatalf("%v\n%s", errs, out)
			}
			if after.Migratable() || after.Normalized != nil {
				t.Errorf("the migrated document still normalises %v:\n%s", after.Normalized, out)
			}
			a, _ := json.Marshal(before.Config)
			b, _ := json.Marshal(after.Config)
			if string(a) != string(b) {
				t.Errorf("configurations differ:\n%s\n%s\nmigrated:\n%s", a, b, out)
			}
			if strings.Contains(string(out), "sk-x") || strings.Contains(string(out), "pass-word") {
				t.Errorf("a value from the environment was written:\n%s", out)
			}
			if DetectFormat(out) != DetectFormat([]byte(doc)) {
				t.Errorf("format changed:\n%s", out)
			}
			again, changed, errs := Migrate(out, env(nil))
			if errs != nil || changed != nil || string(again) != string(out) {
				t.Errorf("a second migration changed %v %v:\n%s", changed, errs, again)
			}
		})
	}
	out, _, _ := Migrate([]byte(docs["every spelling"]), env(nil))
	for _, want := range []string{"# the original Hector's spellings", "# the offline provider", "provider: echo", "display_name: Support",
		"type: local", "working_dir: /srv", "url: postgres://hector:lit%40ral@db:5432/hector", "require: true", "name: key-1", "role: admin",
		"name: ${HECTOR_TEST_UNSET_NAME:-deployment}"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("migrated document lacks %q:\n%s", want, out)
		}
	}
}

// A variable with a default migrates where it is unset, in any field.
func TestMigrateKeepsDefaults(t *testing.T) {
	out, _, errs := Migrate([]byte("version: \"1.0\"\n"+minimal+"server:\n  port: ${HECTOR_TEST_UNSET_PORT:-8080}\n"), env(nil))
	if errs != nil || !strings.Contains(string(out), "port: ${HECTOR_TEST_UNSET_PORT:-8080}") {
		t.Fatalf("%s %v", out, errs)
	}
}

// An invalid document is not migrated: its errors are returned.
func TestMigrateRefusesInvalid(t *testing.T) {
	out, _, errs := Migrate([]byte("llms:\n  e: {type: echo, provider: openai}\nagents: {a: {llm: e}}\n"), env(nil))
	if out != nil || errs == nil || !strings.Contains(errs.Error(), "2:7: llms.e.type: is \"echo\" but provider is \"openai\"") {
		t.Fatalf("%s %v", out, errs)
	}
}
