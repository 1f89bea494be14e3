package analyst

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/glmkit/glmkit/zhipuai"
)

// ToolName is the function the model calls to run code.
const ToolName = "run_python"

var runPythonParams = json.RawMessage(`{
  "type": "object",
  "properties": {
    "code": {"type": "string", "description": "A complete Python 3 script. It runs in a fresh process in the directory holding the CSV file; print() what you need to see."}
  },
  "required": ["code"]
}`)

// Tool is the run_python function tool offered to the model.
func Tool() zhipuai.Tool {
	return zhipuai.FunctionTool(ToolName, "Run a Python 3 script (pandas and matplotlib available) on the CSV file and return its printed output, errors and the names of saved charts.", runPythonParams)
}

// SystemPrompt follows the tutorial's data-analyst prompt, with the facts
// about the file (columns, types, first rows) filled in from the CSV itself.
func SystemPrompt(info *CSVInfo) string {
	return `
You are a data analyst, you will have a code execution tool, you need to write a python script, the tool will execute your content and return the results, now please analyze my csv file.
I will provide you with some information about the csv, which is as follows:

` + info.Describe() + `
Each column has some data, which you need to read through python code.
Rules of the code execution tool (run_python):
- Every call runs a fresh Python 3 process with pandas and matplotlib: import what you need and read the CSV again each time.
- Only printed output comes back to you, so print() the numbers you need.
- To draw a chart use matplotlib and call plt.savefig('a_name.png') or plt.show(); charts are saved as PNG files for the user.
- There is no network access and no pip install.
- If the code fails, read the error and call run_python again with corrected code.
All answers must be provided after querying the csv I provided. When you have the result, answer in plain text (no code), in the language of my request, and mention the chart files you made.
Thinking step by step, here's my request, let's get started:
`
}

// Analyst runs the code-interpreter loop.
type Analyst struct {
	Client   *zhipuai.Client
	Model    string // default glm-4
	Sandbox  *Sandbox
	MaxSteps int    // model calls before giving up (default 8)
	OutDir   string // where charts are copied (created if needed)
	// Events, if set, is told about each code run as it happens.
	Events func(Event)
}

// Event reports a step of the loop: code about to run (Result nil) or its
// result.
type Event struct {
	Step   int
	Code   string
	Result *Result
	Saved  []string // chart paths copied to OutDir by this run
}

// Report is the outcome of an analysis.
type Report struct {
	Answer string
	Steps  int      // model calls made
	Runs   int      // code executions
	Charts []string // files written to OutDir
}

// ErrMaxSteps is returned (wrapped) when the model keeps calling the tool.
var ErrMaxSteps = errors.New("the model did not finish within the step limit")

// Analyze answers request about the CSV at csvPath.
func (a *Analyst) Analyze(ctx context.Context, csvPath, request string) (*Report, error) {
	if a.Client == nil || a.Sandbox == nil {
		return nil, errors.New("analyst: client and sandbox are required")
	}
	if strings.TrimSpace(request) == "" {
		return nil, errors.New("the request is empty: say what to analyse")
	}
	info, err := DescribeCSV(csvPath)
	if err != nil {
		return nil, err
	}
	model := cmpOr(a.Model, "glm-4")
	maxSteps := a.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 8
	}
	outDir := cmpOr(a.OutDir, ".")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	work, err := os.MkdirTemp("", "glm-analyze-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := copyFile(csvPath, filepath.Join(work, info.Name)); err != nil {
		return nil, fmt.Errorf("copying the CSV into the sandbox: %w", err)
	}

	messages := []zhipuai.Message{zhipuai.SystemMessage(SystemPrompt(info)), zhipuai.UserMessage(request)}
	rep := &Report{}
	for rep.Steps < maxSteps {
		rep.Steps++
		resp, err := a.Client.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{
			Model: model, Messages: messages, Tools: []zhipuai.Tool{Tool()}, ToolChoice: "auto",
		})
		if err != nil {
			return rep, err
		}
		if len(resp.Choices) == 0 {
			return rep, errors.New("the model returned no choices")
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			rep.Answer = strings.TrimSpace(msg.Content)
			return rep, nil
		}
		messages = append(messages, msg.ToParam())
		for _, call := range msg.ToolCalls {
			content, err := a.runCall(ctx, call, rep, work, outDir)
			if err != nil {
				return rep, err
			}
			messages = append(messages, zhipuai.ToolMessage(call.ID, content))
		}
	}
	return rep, fmt.Errorf("%w (%d model calls, --max-steps)", ErrMaxSteps, maxSteps)
}

// runCall executes one tool call and returns the tool message content.
func (a *Analyst) runCall(ctx context.Context, call zhipuai.ToolCall, rep *Report, work, outDir string) (string, error) {
	if call.Function.Name != ToolName {
		return fmt.Sprintf("Unknown tool %q: the only tool is %s.", call.Function.Name, ToolName), nil
	}
	code, err := codeFromArguments(call.Function.Arguments)
	if err != nil {
		return "Tool call rejected: " + err.Error() + ` Call run_python with {"code": "<python script>"}.`, nil
	}
	rep.Runs++
	if a.Events != nil {
		a.Events(Event{Step: rep.Runs, Code: code})
	}
	res, err := a.Sandbox.Run(ctx, work, code)
	if err != nil {
		return "", err
	}
	var saved []string
	for _, f := range res.Files {
		dst := filepath.Join(outDir, filepath.Base(f))
		if err := copyChart(filepath.Join(work, f), dst); err != nil {
			return "", fmt.Errorf("saving chart %s: %w", f, err)
		}
		saved = append(saved, dst)
	}
	rep.Charts = appendNew(rep.Charts, saved...)
	if a.Events != nil {
		a.Events(Event{Step: rep.Runs, Code: code, Result: res, Saved: saved})
	}
	return ToolContent(res), nil
}

// codeFromArguments reads {"code": "..."}; some models send the bare
// script instead of JSON, which is accepted too.
func codeFromArguments(args string) (string, error) {
	var v struct {
		Code *string `json:"code"`
	}
	trimmed := strings.TrimSpace(args)
	if strings.HasPrefix(trimmed, "{") {
		if err := json.Unmarshal([]byte(trimmed), &v); err != nil {
			return "", fmt.Errorf("arguments are not valid JSON (%v).", err)
		}
		if v.Code == nil || strings.TrimSpace(*v.Code) == "" {
			return "", errors.New(`arguments lack "code".`)
		}
		return *v.Code, nil
	}
	if trimmed == "" {
		return "", errors.New("no code was given.")
	}
	return stripFences(trimmed), nil
}

func stripFences(s string) string {
	if !strings.HasPrefix(s, "```") {
		return s
	}
	s = strings.TrimPrefix(s, "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(strings.TrimSpace(s), "```")
}

// ToolContent is what the model reads about a run (the tutorial's tool
// message said only "Code finished successfully!"; the model needs the
// output and the errors to continue or fix its code).
func ToolContent(r *Result) string {
	var b strings.Builder
	switch {
	case r.Limit != "":
		b.WriteString(r.Limit + "\n")
	case r.ExitCode == 0:
		b.WriteString("Code finished successfully!\n")
	default:
		fmt.Fprintf(&b, "The code failed (exit status %d). Fix it and call run_python again.\n", r.ExitCode)
	}
	if s := strings.TrimSpace(r.Stdout); s != "" {
		b.WriteString("stdout:\n" + s + "\n")
	}
	if s := strings.TrimSpace(r.Stderr); s != "" {
		b.WriteString("stderr:\n" + s + "\n")
	}
	if len(r.Files) > 0 {
		b.WriteString("charts saved for the user: " + strings.Join(r.Files, ", ") + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// copyChart copies a file the sandboxed code made; it does not follow a
// symlink at src (the code may have planted one pointing at a host file).
func copyChart(src, dst string) error { return copyOpen(src, dst, syscall.O_NOFOLLOW) }

func copyFile(src, dst string) error { return copyOpen(src, dst, 0) }

func copyOpen(src, dst string, flags int) error {
	in, err := os.OpenFile(src, os.O_RDONLY|flags, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
