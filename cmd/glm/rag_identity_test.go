package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/cookbook/rag"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// An index records the model that really made its vectors: built through
// glm serve's builtin model under the operator's alias embedding-2, it
// refuses a query, and an addition, answered by a real embedding-2; and a
// query asked of another model is refused before any call.
func TestRagIndexKeepsItsModel(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alias.json")
	if err := os.WriteFile(cfg, []byte(`{"builtin":{"aliases":["embedding-2"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startInProcess(t, filepath.Join(dir, "data"), cfg)
	t.Setenv("ZHIPUAI_API_KEY", s.key)
	t.Setenv("ZHIPUAI_BASE_URL", s.base+"/api/paas/v4")

	docs := cliCopyDir(t, "../../examples/docs")
	idx := filepath.Join(dir, "rag.idx")
	if _, _, err := cliRunCmd(t, "", "rag", "index", "--index", idx, "--embed-model", "embedding-2", docs); err != nil {
		t.Fatal(err)
	}
	ix, err := rag.LoadIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Model != "embedding-2" || ix.AnsweredBy != platform.BuiltinEmbedModel {
		t.Fatalf("index: got model %q answered by %q, want embedding-2 answered by %s", ix.Model, ix.AnsweredBy, platform.BuiltinEmbedModel)
	}
	if _, _, err := cliRunCmd(t, "", "rag", "search", "--index", idx, "VideoAnalytica"); err != nil {
		t.Fatalf("search through the same server: %v", err)
	}
	_, _, err = cliRunCmd(t, "", "rag", "search", "--index", idx, "--embed-model", "embedding-3", "VideoAnalytica")
	if err == nil || !strings.Contains(err.Error(), "built with embedding model embedding-2, not embedding-3") {
		t.Fatalf("search with another --embed-model: got %v, want a refusal", err)
	}

	// Now a real embedding-2 answers: the index's vectors are not its.
	t.Setenv("ZHIPUAI_API_KEY", up.APIKey)
	t.Setenv("ZHIPUAI_BASE_URL", up.URL())
	want := fmt.Sprintf("the index holds vectors of model %s, but embedding-2 is now answered by embedding-2", platform.BuiltinEmbedModel)
	_, _, err = cliRunCmd(t, "", "rag", "search", "--index", idx, "VideoAnalytica")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("search answered by another model: got %v, want %q", err, want)
	}
	if err := os.WriteFile(filepath.Join(docs, "new.txt"), []byte("a new file to add to the index"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = cliRunCmd(t, "", "rag", "index", "--index", idx, "--embed-model", "embedding-2", docs)
	if err == nil || !strings.Contains(err.Error(), "cannot share an index") {
		t.Fatalf("adding vectors of another model: got %v, want a refusal", err)
	}
}
