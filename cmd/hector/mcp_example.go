package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpExampleCmd serves a tiny MCP server on standard input and output,
// offline: a clock and a text tool, for trying MCP hosts (and Hector's
// own MCP tools) without installing anything. It reads no files and
// starts no programs.
func mcpExampleCmd(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: hector mcp-example   (an MCP server on stdin/stdout: tools clock and text_stats)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := exampleServer().Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "hector mcp-example:", err)
		return 1
	}
	return 0
}

type clockIn struct {
	Zone string `json:"zone,omitempty" jsonschema:"an IANA time zone such as Europe/Paris; default UTC"`
}

type clockOut struct {
	Time string `json:"time" jsonschema:"the time, RFC 3339"`
	Zone string `json:"zone"`
}

type statsIn struct {
	Text string `json:"text" jsonschema:"the text to measure"`
}

type statsOut struct {
	Characters int `json:"characters"`
	Words      int `json:"words"`
	Lines      int `json:"lines"`
}

// exampleServer is the mcp-example server: its tools compute from their
// input and the clock alone.
func exampleServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "hector-mcp-example", Version: version}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "clock", Description: "The current time, in a time zone (default UTC)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in clockIn) (*mcp.CallToolResult, clockOut, error) {
			zone := in.Zone
			if zone == "" {
				zone = "UTC"
			}
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return nil, clockOut{}, fmt.Errorf("unknown time zone %q", zone)
			}
			return nil, clockOut{Time: time.Now().In(loc).Format(time.RFC3339), Zone: zone}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "text_stats", Description: "Counts the characters, words and lines of a text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in statsIn) (*mcp.CallToolResult, statsOut, error) {
			lines := strings.Count(in.Text, "\n")
			if in.Text != "" && !strings.HasSuffix(in.Text, "\n") {
				lines++
			}
			return nil, statsOut{Characters: utf8.RuneCountInString(in.Text), Words: len(strings.Fields(in.Text)), Lines: lines}, nil
		})
	return s
}
