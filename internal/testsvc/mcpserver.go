package testsvc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPServerEnv, set in a test binary's environment, makes
// ServeMCPIfAsked serve the test MCP server on stdin and stdout instead of
// running the tests: a test names its own binary (os.Args[0]) as a stdio
// MCP server. MCPStartsEnv names a file each start appends a line to, so
// a test can count the processes started.
const (
	MCPServerEnv = "HECTOR_TEST_MCP_SERVER"
	MCPStartsEnv = "HECTOR_TEST_MCP_STARTS"
)

// ServeMCPIfAsked is for TestMain: when MCPServerEnv is set it serves the
// test MCP server over stdio until stdin closes and exits.
func ServeMCPIfAsked() {
	if os.Getenv(MCPServerEnv) == "" {
		return
	}
	if f := os.Getenv(MCPStartsEnv); f != "" {
		if out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(out, os.Getpid())
			out.Close()
		}
	}
	fmt.Fprintln(os.Stderr, "test MCP server starting")
	err := MCPServer(true).Run(context.Background(), &mcp.StdioTransport{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "test MCP server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// MCPStarts counts the starts recorded in file.
func MCPStarts(file string) int {
	b, _ := os.ReadFile(file)
	return strings.Count(string(b), "\n")
}

type textIn struct {
	Text string `json:"text"`
}

type msIn struct {
	MS int `json:"ms"`
}

type sizeIn struct {
	Bytes int `json:"bytes"`
}

type noIn struct{}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// MCPServer is the test MCP server, built on the official go-sdk. Its
// tools: echo, slow (sleeps ms), fail (an error result), big (bytes of
// output), meta (the call's Idempotency-Key from _meta), environ (its
// environment), pid, image, grow (adds a tool named late, which sends
// tools/list_changed), forget (removes echo) and, with stdio, crash (exits
// 3 with a line on stderr).
func MCPServer(stdio bool) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "hector-test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes its text."}, func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		return text("echo: " + in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Sleeps ms milliseconds."}, func(ctx context.Context, _ *mcp.CallToolRequest, in msIn) (*mcp.CallToolResult, any, error) {
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return text("slept " + strconv.Itoa(in.MS) + "ms"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Fails."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		r := text("failed on purpose")
		r.IsError = true
		return r, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "Returns bytes x's."}, func(_ context.Context, _ *mcp.CallToolRequest, in sizeIn) (*mcp.CallToolResult, any, error) {
		return text(strings.Repeat("x", in.Bytes)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "meta", Description: "Returns the call's Idempotency-Key."}, func(_ context.Context, req *mcp.CallToolRequest, _ noIn) (*mcp.CallToolResult, any, error) {
		key, _ := req.Params.Meta["Idempotency-Key"].(string)
		return text("key=" + key), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "environ", Description: "Returns its environment."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		return text(strings.Join(slices.Sorted(slices.Values(os.Environ())), "\n")), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "Returns its process id."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		return text(strconv.Itoa(os.Getpid())), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "image", Description: "Returns a picture."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{MIMEType: "image/png", Data: []byte("not really a png")}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "grow", Description: "Adds the tool late."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		mcp.AddTool(s, &mcp.Tool{Name: "late", Description: "Added by grow."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
			return text("late here"), nil, nil
		})
		return text("grown"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "forget", Description: "Removes the tool echo."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
		s.RemoveTools("echo")
		return text("forgotten"), nil, nil
	})
	if stdio {
		mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "Exits 3."}, func(context.Context, *mcp.CallToolRequest, noIn) (*mcp.CallToolResult, any, error) {
			fmt.Fprintln(os.Stderr, "crashing on purpose")
			os.Exit(3)
			return nil, nil, nil
		})
	}
	return s
}
