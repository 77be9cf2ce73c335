package config

import (
	"strings"
	"testing"
)

// An app's document is refused, naming the line, for each server-wide
// section it sets; its agents, tools and LLMs are its own.
func TestAppDocumentsMayNotSetServerWideSections(t *testing.T) {
	ok := "llms:\n  m: {provider: echo}\nagents:\n  a: {llm: m}\n"
	doc, errs := Parse([]byte(ok), env(nil))
	if errs != nil || doc.AppErrors() != nil {
		t.Fatalf("a plain app document: %v %v", errs, doc.AppErrors())
	}
	bad := ok + "server:\n  port: 9999\ndatabase:\n  url: sqlite://x.db\n"
	doc, errs = Parse([]byte(bad), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	got := doc.AppErrors()
	if len(got) != 2 || got[0].Path != "server" || got[0].Line != 5 || got[1].Path != "database" || got[1].Line != 7 {
		t.Fatalf("errors %+v", got)
	}
	if !strings.Contains(got[0].Error(), "server-wide") {
		t.Fatalf("message %q", got[0].Error())
	}
	doc, errs = Parse([]byte(`{"agents": {"a": {"llm": "m"}}, "llms": {"m": {"provider": "echo"}}, "queue": {"workers": 2}}`), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	if got := doc.AppErrors(); len(got) != 1 || got[0].Path != "queue" {
		t.Fatalf("JSON app document: %+v", got)
	}
}

// A YAML document whose newlines were stripped (curl -d @file) is named
// as such, at line 1, with the way to upload it.
func TestFlattenedDocumentIsNamed(t *testing.T) {
	_, errs := Parse([]byte("version: 1llms:  e:    provider: echoagents:  a:    llm: e"), env(nil))
	if len(errs) != 1 || errs[0].Line != 1 || !strings.Contains(errs[0].Message, "newlines were stripped") || !strings.Contains(errs[0].Message, "--data-binary") {
		t.Fatalf("%+v", errs)
	}
	// A one-line JSON document, or flow YAML, is not flattened.
	if _, errs := Parse([]byte(`{"agents": {"a": {"llm": "e"}}, "llms": {"e": {"provider": "echo"}}}`), env(nil)); errs != nil {
		t.Fatalf("JSON on one line: %v", errs)
	}
	if _, errs := Parse([]byte("{llms: {e: {provider: echo}}, agents: {a: {llm: e}}}"), env(nil)); errs != nil {
		t.Fatalf("flow YAML on one line: %v", errs)
	}
}
