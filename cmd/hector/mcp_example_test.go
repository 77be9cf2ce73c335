package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The official go-sdk client runs hector mcp-example as a stdio server:
// it lists the two tools and calls each, and a bad zone is a tool error.
func TestMCPExampleServer(t *testing.T) {
	bin := buildBinary(t)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(bin, "mcp-example")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 || tools.Tools[0].Name != "clock" || tools.Tools[1].Name != "text_stats" {
		t.Fatalf("tools: %+v %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "clock", Arguments: map[string]any{"zone": "Europe/Paris"}})
	if err != nil || res.IsError {
		t.Fatalf("clock: %+v %v", res, err)
	}
	if out := res.StructuredContent.(map[string]any); out["zone"] != "Europe/Paris" || !strings.Contains(out["time"].(string), "T") {
		t.Fatalf("clock: %v", out)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "text_stats", Arguments: map[string]any{"text": "one two\nthree"}})
	if err != nil || res.IsError {
		t.Fatalf("text_stats: %+v %v", res, err)
	}
	if out := res.StructuredContent.(map[string]any); out["words"] != float64(3) || out["lines"] != float64(2) || out["characters"] != float64(13) {
		t.Fatalf("text_stats: %v", out)
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "clock", Arguments: map[string]any{"zone": "Mars/Olympus"}}); err != nil || !res.IsError {
		t.Fatalf("an unknown zone: %+v %v", res, err)
	}
}
