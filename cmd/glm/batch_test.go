package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// TestBatchCLI: glm batch submit --wait against glm serve uploads,
// creates, shows plain progress lines (no terminal) and writes the output
// and error files; status, list, output and cancel speak in their flags;
// the operator's list reads the database.
func TestBatchCLI(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := startInProcess(t, data, writeConfig(t, dir, up))
	conn := []string{"--base-url", s.base + "/api/paas/v4", "--api-key", s.key}
	in := filepath.Join(dir, "reviews.jsonl")
	lines := []string{
		`{"custom_id":"r1","method":"POST","url":"/v4/chat/completions","body":{"model":"glm-4","messages":[{"role":"user","content":"good"}]}}`,
		`{"custom_id":"r2","method":"POST","url":"/v4/chat/completions","body":{"model":"glm-4","messages":[{"role":"user","content":"bad"}]}}`,
		`{"custom_id":"r3","method":"POST","url":"/v4/chat/completions","body":{"model":"glm-4"}}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := cliRunCmd(t, "", append([]string{"batch", "submit", in, "--wait", "--poll", "50ms"}, conn...)...)
	if err != nil {
		t.Fatalf("submit: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "3 lines (1 refused at validation)") || !strings.Contains(stderr, "completed: 3/3 done, 1 failed") {
		t.Errorf("submit progress: got %q, want the line counts and a plain completed line", stderr)
	}
	out := filepath.Join(dir, "reviews.output.jsonl")
	if !strings.Contains(stdout, "wrote "+out+" (2 results)") || !strings.Contains(stdout, "reviews.errors.jsonl (1 failed lines)") {
		t.Errorf("submit: got %q", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r zhipuai.BatchResultLine
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Response == nil || r.Response.StatusCode != 200 {
			t.Fatalf("output line %q: %v", l, err)
		}
		got[r.CustomID] = true
	}
	if len(got) != 2 || !got["r1"] || !got["r2"] {
		t.Fatalf("output custom_ids: got %v, want r1 and r2", got)
	}
	errs, _ := os.ReadFile(filepath.Join(dir, "reviews.errors.jsonl"))
	if !strings.Contains(string(errs), `"custom_id":"r3"`) || !strings.Contains(string(errs), `"code":"1213"`) {
		t.Fatalf("error file: got %s, want r3 with 1213 (messages missing)", errs)
	}

	stdout, _, err = cliRunCmd(t, "", append([]string{"batch", "list", "--json"}, conn...)...)
	var page zhipuai.BatchList
	if err != nil || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Data) != 1 {
		t.Fatalf("list: got %q, %v", stdout, err)
	}
	id := page.Data[0].ID
	if stdout, _, err = cliRunCmd(t, "", append([]string{"batch", "status", id}, conn...)...); err != nil || !strings.Contains(stdout, id+"  completed") {
		t.Errorf("status: got %q, %v", stdout, err)
	}
	if stdout, _, err = cliRunCmd(t, "", append([]string{"batch", "output", id, "--errors"}, conn...)...); err != nil || !strings.Contains(stdout, `"r3"`) {
		t.Errorf("output --errors: got %q, %v", stdout, err)
	}
	if _, _, err = cliRunCmd(t, "", append([]string{"batch", "cancel", id}, conn...)...); err == nil || !strings.Contains(err.Error(), "only a validating or in_progress batch can be cancelled") {
		t.Errorf("cancel a finished batch: got %v", err)
	}
	if _, _, err = cliRunCmd(t, "", append([]string{"batch", "submit", in, "--endpoint", "/v1/images"}, conn...)...); err == nil || !strings.Contains(err.Error(), "--endpoint") {
		t.Errorf("submit --endpoint /v1/images: got %v, want an error naming --endpoint", err)
	}
	s.stop()
	if stdout, _, err = cliRunCmd(t, "", "batch", "list", "--account", "default", "--data-dir", data); err != nil || !strings.Contains(stdout, id+"  default  completed") {
		t.Errorf("operator list: got %q, %v", stdout, err)
	}
}
