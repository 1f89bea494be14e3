package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/cookbook/analyst"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func cliRunPython(code string) zhipuai.ToolCall {
	args, _ := json.Marshal(map[string]string{"code": code})
	return zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "run_python", Arguments: string(args)}}
}

func TestAnalyzeCommandDrawsChart(t *testing.T) {
	if _, err := analyst.FindPython(context.Background(), ""); err != nil {
		t.Skipf("skipping: no usable Python (%v)", err)
	}
	srv := cliFake(t)
	out := filepath.Join(t.TempDir(), "charts")
	code := `import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv('urban-rural-population.csv')
arc = df[df['Entity'] == 'Arcadia']
print(arc['Urban population (%)'].iloc[-1])
arc.plot(x='Year', y=['Urban population (%)', 'Rural population (%)'])
plt.savefig('arcadia.png')
`
	srv.Enqueue(zhipuaitest.ToolCalls(cliRunPython(code)), zhipuaitest.Text("Arcadia is 83.0% urban by 2050 (arcadia.png)."))
	stdout, stderr, err := cliRunCmd(t, "", "analyze", "--out", out, "../../examples/data/urban-rural-population.csv",
		"Read csv and draw the distribution of urban and rural population development in Arcadia")
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(out, "arcadia.png")
	if stdout != "Arcadia is 83.0% urban by 2050 (arcadia.png).\n\nCharts:\n  "+chart+"\n" {
		t.Fatalf("stdout %q", stdout)
	}
	png, err := os.ReadFile(chart)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("chart: %v", err)
	}
	if !strings.Contains(stderr, "── run 1: code ──") || !strings.Contains(stderr, "83.0") || !strings.Contains(stderr, "sandbox: bwrap") {
		t.Fatalf("stderr:\n%s", stderr)
	}
	reqs := cliChats(srv)
	if len(reqs) != 2 || !strings.Contains(reqs[1].Messages[len(reqs[1].Messages)-1].Content.String(), "Code finished successfully!") {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestAnalyzeCommandErrors(t *testing.T) {
	srv := cliFake(t)
	_, _, err := cliRunCmd(t, "", "analyze", "--python", "/nonexistent/python3", "../../examples/data/urban-rural-population.csv", "x")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/python3") {
		t.Fatalf("bad python: %v", err)
	}
	if _, _, err := cliRunCmd(t, "", "analyze", "missing.csv", "x"); err == nil {
		t.Fatal("missing CSV accepted")
	}
	if _, _, err := cliRunCmd(t, "", "analyze", "only-one-arg.csv"); err == nil {
		t.Fatal("missing request accepted")
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests reached the model", n)
	}
}

func TestAnalyzeCommandRefusesWithoutSandbox(t *testing.T) {
	if _, err := analyst.FindPython(context.Background(), "/usr/bin/python3"); err != nil {
		t.Skipf("skipping: no usable Python (%v)", err)
	}
	srv := cliFake(t)
	// A PATH without bwrap: the sandbox cannot be had here.
	t.Setenv("PATH", t.TempDir())
	csv := "../../examples/data/urban-rural-population.csv"
	_, _, err := cliRunCmd(t, "", "analyze", "--python", "/usr/bin/python3", csv, "x")
	if err == nil || !strings.Contains(err.Error(), "--unsafe-no-sandbox") || !strings.Contains(err.Error(), "bubblewrap") {
		t.Fatalf("got %v, want a refusal naming bubblewrap and --unsafe-no-sandbox", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("got %d requests to the model, want 0", n)
	}
	srv.Enqueue(zhipuaitest.ToolCalls(cliRunPython("print(6 * 7)")), zhipuaitest.Text("42"))
	out := filepath.Join(t.TempDir(), "charts")
	stdout, stderr, err := cliRunCmd(t, "", "analyze", "-q", "--unsafe-no-sandbox", "--python", "/usr/bin/python3", "--out", out, csv, "x")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "42\n" || !strings.Contains(stderr, "UNSAFE") {
		t.Fatalf("got stdout %q, stderr %q, want the answer and an UNSAFE warning", stdout, stderr)
	}
}
