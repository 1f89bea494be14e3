package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/glmkit/glmkit/platform"
	anthropicapi "github.com/glmkit/glmkit/platform/anthropic"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// TestExampleAgainstServe runs the example with the Anthropic Go SDK
// against glm serve's Messages handler on loopback, with its real parts
// (SQLite, auth, request log, router, metered call) and the scripted Zhipu
// cloud as the only stand-in; the request log holds what the SDK reported.
func TestExampleAgainstServe(t *testing.T) {
	ctx := context.Background()
	up := zhipuaitest.NewServer()
	defer up.Close()
	up.Enqueue(zhipuaitest.Text("北京今天晴。").WithUsage(11, 7).Times(2))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateAccount(ctx, platform.Account{ID: "acct-1", Name: "default", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key, _ := platform.NewKey("acct-1", "example", time.Now())
	if err := st.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	backends, err := router.New(ctx, router.Config{Backends: []router.BackendConfig{
		{Name: "cloud", Type: router.TypeZhipu, BaseURL: up.URL(), APIKey: up.APIKey}}})
	if err != nil {
		t.Fatal(err)
	}
	log := requestlog.New(st, requestlog.Options{Interval: 10 * time.Millisecond})
	calls := metered.New(metered.Options{Backend: backends, Catalogue: backends, Log: log})
	api := anthropicapi.New(anthropicapi.Options{Auth: auth.New(st, auth.Options{}), Calls: calls,
		Models: &anthropicapi.Models{Catalogue: backends, Default: anthropicapi.DefaultChatModel(backends, "glm-4")}})
	root := mux.New(nil)
	root.Mount(api)
	srv := httptest.NewServer(root)
	defer srv.Close()

	c := anthropic.NewClient(option.WithBaseURL(srv.URL+anthropicapi.DefaultPrefix), option.WithAPIKey(key.Full()),
		option.WithMaxRetries(0))
	var out bytes.Buffer
	if err := run(ctx, c, "claude-sonnet-4-5", "北京今天天气怎么样？", &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := "message: 北京今天晴。\nusage: input 11, output 7, cache read 0; stop end_turn\n" +
		"stream: 北京今天晴。\nusage: input 11, output 7, cache read 0; stop end_turn\n"
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := st.ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Endpoint == anthropicapi.EndpointMessages && r.Model == "glm-4" && r.Usage.PromptTokens == 11 && r.Usage.CompletionTokens == 7 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d request-log rows of anthropic.messages on glm-4 with 11+7 tokens, want 2 (rows: %+v)", n, rows)
	}
	if h := up.Requests()[0].Chat; !strings.HasPrefix(h.Model, "glm-4") {
		t.Errorf("upstream model %s", h.Model)
	}
}
