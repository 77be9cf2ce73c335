package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
)

// sourceCmd runs `hector config get|put`: it reads or writes the
// configuration where it lives, with no server involved.
func sourceCmd(sub string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := "usage: hector config get [--config-type T] [--config KEY] [--format as-is|yaml|json]\n" +
		"       hector config put [--config-type T] [--config KEY] [--format as-is|yaml|json] [--no-validate] [--if-version N] [FILE|-]"
	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := newEnvFlags(fs)
	sf := addSourceFlags(fs, env)
	db := fs.String("database", "", "for --config-type database without --config-endpoints: the database URL")
	env.bind("database", "HECTOR_DATABASE")
	sf.databaseURL = db
	format := fs.String("format", "as-is", "convert the document: as-is, yaml or json")
	noValidate := fs.Bool("no-validate", false, "put: store the document even if it does not validate")
	fs.Bool("origin", false, "show: print the merged document with the source of every value")
	ifVersion := fs.Int64("if-version", -1, "put, database only: store only if the document is at this version (0: must not exist)")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if err := env.apply(); err != nil {
		fmt.Fprintln(stderr, "hector config:", err)
		return 2
	}
	if *format != "as-is" && *format != "yaml" && *format != "json" {
		fmt.Fprintf(stderr, "hector config %s: --format must be as-is, yaml or json, got %q\n", sub, *format)
		return 2
	}
	if (sub != "put" && len(pos) > 0) || (sub == "put" && len(pos) > 1) {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	src, err := sf.open()
	if err != nil {
		fmt.Fprintln(stderr, "hector config:", err)
		return 2
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if sub == "show" { // --origin
		rev := src.Load(ctx)
		if ov, ok := src.(*source.Overlay); ok {
			rev = ov.LoadWithOrigins(ctx)
		} else if rev.Err == nil {
			rev.Data, rev.Err = config.Merge([]config.Layer{{Name: src.Name(), Data: rev.Data}}, true)
		}
		if rev.Err != nil {
			fmt.Fprintln(stderr, "hector config show:", rev.Err)
			return 1
		}
		shown, err := config.Redact(rev.Data) // like every other view of the document
		if err != nil {
			fmt.Fprintln(stderr, "hector config show:", err)
			return 1
		}
		_, _ = stdout.Write(shown)
		return 0
	}
	if sub == "get" {
		rev := src.Load(ctx)
		if rev.Err != nil {
			fmt.Fprintln(stderr, "hector config get:", rev.Err)
			return 1
		}
		out, err := convert(rev.Data, *format)
		if err != nil {
			fmt.Fprintln(stderr, "hector config get:", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}

	var data []byte
	name := "(stdin)"
	if len(pos) == 0 || pos[0] == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		name = pos[0]
		data, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintln(stderr, "hector config put:", err)
		return 1
	}
	tooLarge := func(data []byte) bool { // --config-max-bytes: sources would refuse to read it
		err := source.CheckSize(name, int64(len(data)), sf.maxBytes)
		if err != nil {
			fmt.Fprintf(stderr, "hector config put: %v; nothing stored\n", err)
		}
		return err != nil
	}
	if tooLarge(data) {
		return 1
	}
	if !*noValidate {
		if _, errs := config.Parse(data, os.LookupEnv); errs != nil {
			for _, e := range errs {
				fmt.Fprintf(stderr, "%s:%s\n", name, e.Error())
			}
			fmt.Fprintf(stderr, "hector config put: %d error(s); nothing stored (--no-validate stores it anyway)\n", len(errs))
			return 1
		}
	}
	if data, err = convert(data, *format); err != nil {
		fmt.Fprintln(stderr, "hector config put:", err)
		return 1
	}
	if tooLarge(data) { // as converted
		return 1
	}
	if d, ok := src.(*source.Database); ok {
		v, err := d.Put(ctx, data, *ifVersion, "cli")
		if err != nil {
			fmt.Fprintln(stderr, "hector config put:", err)
			return 1
		}
		fmt.Fprintf(stdout, "stored %s version %d (%s)\n", src.Name(), v, config.Hash(data))
		return 0
	}
	if *ifVersion >= 0 {
		fmt.Fprintln(stderr, "hector config put: --if-version is for --config-type database")
		return 2
	}
	w, ok := src.(source.Writer)
	if !ok {
		fmt.Fprintf(stderr, "hector config put: %s is not writable (put one layer of an overlay with --config-type and --config)\n", src.Name())
		return 2
	}
	if err := w.Write(data); err != nil {
		fmt.Fprintln(stderr, "hector config put:", err)
		return 1
	}
	fmt.Fprintf(stdout, "stored %s (%s)\n", src.Name(), config.Hash(data))
	return 0
}

// convert re-encodes a YAML or JSON document as YAML or JSON, keeping the
// order of keys. as-is returns it unchanged. Comments do not survive.
func convert(data []byte, format string) ([]byte, error) {
	if format == "as-is" {
		return data, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty document")
	}
	if format == "yaml" {
		blockStyle(&doc)
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var b bytes.Buffer
	if err := writeJSON(&b, doc.Content[0], ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle && n.Tag == "!!str" {
		n.Style = 0 // JSON quotes every string; YAML needs quotes only where the encoder says
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// writeJSON writes a YAML node as indented JSON in document order.
func writeJSON(b *bytes.Buffer, n *yaml.Node, indent string) error {
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, indent)
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteString("{\n")
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, _ := json.Marshal(n.Content[i].Value)
			b.WriteString(indent + "  " + string(k) + ": ")
			if err := writeJSON(b, n.Content[i+1], indent+"  "); err != nil {
				return err
			}
			if i+2 < len(n.Content) {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteString("[\n")
		for i, c := range n.Content {
			b.WriteString(indent + "  ")
			if err := writeJSON(b, c, indent+"  "); err != nil {
				return err
			}
			if i+1 < len(n.Content) {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err != nil {
				return err
			}
			out, err := json.Marshal(v)
			if err != nil { // .inf and .nan have no JSON form
				return fmt.Errorf("line %d: %q has no JSON form", n.Line, n.Value)
			}
			b.Write(out)
		default:
			out, _ := json.Marshal(n.Value)
			b.Write(out)
		}
	default:
		return fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	return nil
}
