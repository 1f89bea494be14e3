package anthropic

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name: JSON ignoring formatting, other
// files byte for byte.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	isJSON := strings.HasSuffix(name, ".json")
	if *update {
		out := got
		if isJSON {
			var buf bytes.Buffer
			if err := json.Indent(&buf, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			out = append(buf.Bytes(), '\n')
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !isJSON {
		if d := cmp.Diff(string(want), string(got)); d != "" {
			t.Fatalf("%s mismatch (-want +got):\n%s", name, d)
		}
		return
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got: %v", err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", name, d)
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(mustRead(t, name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestToV4Golden(t *testing.T) {
	var req MessagesRequest
	readJSON(t, "request.anthropic.json", &req)
	out, err := ToV4(&req, "glm-4v-plus")
	if err != nil {
		t.Fatal(err)
	}
	if err := zhipuai.ValidateChatRequest(out); err != nil {
		t.Fatalf("translated request fails the V4 validator: %v", err)
	}
	b, _ := json.Marshal(out)
	golden(t, "request.v4.json", b)
	// The rules the golden file encodes, checked explicitly too.
	roles := ""
	for _, m := range out.Messages {
		roles += m.Role[:1]
	}
	if roles != "suatuau" {
		t.Errorf("roles = %q, want suatuau (system, user, assistant+call, tool, user, assistant, user)", roles)
	}
	if got := out.Messages[3]; got.ToolCallID != "toolu_01" || got.Content.Text != `{"temperature":25}` {
		t.Errorf("tool message = %+v, want the tool_result for toolu_01", got)
	}
	if got := out.Messages[1].Content.Parts[1].ImageURL.URL; !strings.HasPrefix(got, "data:image/png;base64,iVBOR") {
		t.Errorf("base64 image → %.40s, want a data URI", got)
	}
	if out.Thinking == nil || out.Thinking.Type != "enabled" || out.ToolChoice != "auto" || out.UserID != "user-1234567" {
		t.Errorf("thinking %+v, tool_choice %q, user_id %q", out.Thinking, out.ToolChoice, out.UserID)
	}
}

func TestFromV4Golden(t *testing.T) {
	var resp zhipuai.ChatCompletion
	readJSON(t, "reply.v4.json", &resp)
	msg := FromV4(&resp, "claude-sonnet-4-5")
	b, _ := json.Marshal(msg)
	golden(t, "reply.anthropic.json", b)
	if msg.Usage.InputTokens+msg.Usage.CacheReadInputTokens != resp.Usage.PromptTokens || msg.Usage.CacheReadInputTokens != 100 {
		t.Errorf("usage %+v: input + cache_read must be the V4 prompt_tokens %d, cache_read 100", msg.Usage, resp.Usage.PromptTokens)
	}
	if *msg.StopReason != StopToolUse || len(msg.Content) != 3 {
		t.Errorf("stop_reason %s, %d blocks; want tool_use, thinking+text+tool_use", *msg.StopReason, len(msg.Content))
	}
}

// translateStream runs a V4 SSE transcript through the translator and
// writes the events as the handler does.
func translateStream(t *testing.T, name string, fallback zhipuai.Usage) ([]byte, []Event) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := NewStreamTranslator("claude-sonnet-4-5", 90)
	var events []Event
	r := sse.NewReader(f)
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("transcript ended without [DONE]: %v", err)
		}
		if e.IsDone() {
			break
		}
		var c zhipuai.ChatCompletionChunk
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatal(err)
		}
		events = append(events, tr.Chunk(&c)...)
	}
	events = append(events, tr.End(fallback)...)
	if again := tr.End(fallback); again != nil {
		t.Errorf("second End made %d events, want none", len(again))
	}
	var out bytes.Buffer
	for _, e := range events {
		b, _ := json.Marshal(e.Data)
		out.WriteString("event: " + e.Type + "\ndata: ")
		out.Write(b)
		out.WriteString("\n\n")
	}
	return out.Bytes(), events
}

func TestStreamGolden(t *testing.T) {
	b, events := translateStream(t, "stream.v4.sse", zhipuai.Usage{})
	golden(t, "stream.anthropic.sse", b)
	var names []string
	for _, e := range events {
		names = append(names, e.Type)
	}
	want := "message_start ping " +
		"content_block_start content_block_delta content_block_delta content_block_stop " + // thinking
		"content_block_start content_block_delta content_block_delta content_block_stop " + // text
		"content_block_start content_block_delta content_block_delta content_block_stop " + // tool 1 in pieces
		"content_block_start content_block_delta content_block_stop " + // tool 2
		"message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	md := events[len(events)-2].Data.(messageDeltaEvent)
	if *md.Delta.StopReason != StopToolUse || md.Usage != (Usage{InputTokens: 20, OutputTokens: 30, CacheReadInputTokens: 100}) {
		t.Errorf("message_delta = %+v %+v, want tool_use and the reported usage", *md.Delta.StopReason, md.Usage)
	}
}

func TestStreamWithoutUsageReportsFallback(t *testing.T) {
	tr := NewStreamTranslator("claude-haiku-4-5", 12)
	tr.Chunk(&zhipuai.ChatCompletionChunk{ID: "x", Choices: []zhipuai.ChunkChoice{{Delta: zhipuai.Delta{Content: "hi"}}}})
	ev := tr.End(zhipuai.Usage{PromptTokens: 12, CompletionTokens: 3})
	md := ev[len(ev)-2].Data.(messageDeltaEvent)
	if md.Usage != (Usage{InputTokens: 12, OutputTokens: 3}) || *md.Delta.StopReason != StopEndTurn {
		t.Errorf("message_delta = %+v %s, want the fallback usage 12+3 and end_turn", md.Usage, *md.Delta.StopReason)
	}
	if ev[0].Type != EventBlockStop {
		t.Errorf("first End event %s, want the open text block stopped", ev[0].Type)
	}
}

func TestToV4Refusals(t *testing.T) {
	cases := []struct {
		name, body, code, inMessage string
	}{
		{"server tool", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "1214", "tools[0].type"},
		{"tool without schema", `{"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}`, "1213", "tools[0].input_schema"},
		{"bad role", `{"messages":[{"role":"system","content":"x"}]}`, "1214", "messages[0].role"},
		{"no content", `{"messages":[{"role":"user"}]}`, "1213", "messages[0].content"},
		{"bad media type", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"AAAA"}}]}]}`, "1214", "media_type"},
		{"image in assistant turn", `{"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`, "1214", "user turns only"},
		{"tool_use in user turn", `{"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}`, "1214", "assistant turns"},
		{"tool_result without id", `{"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "1213", "tool_use_id"},
		{"tool input not an object", `{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}`, "1214", "input"},
		{"unknown tool_choice", `{"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"some"}}`, "1214", "tool_choice.type"},
		{"tool_choice names a missing tool", `{"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"g"}}`, "1214", "no tool named"},
		{"bad thinking", `{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"always"}}`, "1214", "thinking.type"},
		{"unknown block", `{"messages":[{"role":"user","content":[{"type":"document"}]}]}`, "1214", "document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req MessagesRequest
			if err := json.Unmarshal([]byte(c.body), &req); err != nil {
				t.Fatal(err)
			}
			_, err := ToV4(&req, "glm-4")
			e, ok := err.(*platform.Error)
			if !ok || e.Code != c.code || !strings.Contains(e.Message, c.inMessage) {
				t.Fatalf("got %v, want code %s mentioning %q", err, c.code, c.inMessage)
			}
		})
	}
}

func TestToolChoice(t *testing.T) {
	tools := `"tools":[{"name":"f","input_schema":{"type":"object"}},{"name":"g","input_schema":{"type":"object"}}]`
	cases := map[string][]string{
		`{"type":"auto"}`:            {"f", "g"},
		`{"type":"any"}`:             {"f", "g"},
		`{"type":"tool","name":"g"}`: {"g"},
		`{"type":"none"}`:            nil,
	}
	for choice, want := range cases {
		var req MessagesRequest
		if err := json.Unmarshal([]byte(`{"messages":[{"role":"user","content":"x"}],`+tools+`,"tool_choice":`+choice+`}`), &req); err != nil {
			t.Fatal(err)
		}
		out, err := ToV4(&req, "glm-4")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tl := range out.Tools {
			got = append(got, tl.Function.Name)
		}
		if !cmp.Equal(got, want) {
			t.Errorf("tool_choice %s: tools %v, want %v", choice, got, want)
		}
	}
}

func TestFieldName(t *testing.T) {
	for v4, want := range map[string]string{
		"stop": "stop_sequences", "tools[2].function.parameters": "tools[2].input_schema",
		"tools[0].function.name": "tools[0].name", "temperature": "temperature",
	} {
		if got := FieldName(v4); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", v4, got, want)
		}
	}
}

func TestErrorOf(t *testing.T) {
	cases := []struct {
		err    *platform.Error
		status int
		typ    string
	}{
		{platform.Errorf(platform.CodeInvalidToken, "bad key"), 401, ErrAuthentication},
		{platform.Errorf(platform.CodeArrears, "no credit"), 429, ErrRateLimit},
		{platform.Errorf(platform.CodeConcurrency, "busy"), 429, ErrRateLimit},
		{platform.Errorf(platform.CodeDailyQuota, "quota"), 429, ErrRateLimit},
		{platform.Errorf(platform.CodeOverloaded, "overloaded"), 529, ErrOverloaded},
		{platform.Errorf(platform.CodeNetwork, "upstream"), 502, ErrAPI},
		{platform.Errorf(platform.CodeInternal, "internal error"), 500, ErrAPI},
		{platform.Errorf(platform.CodeUnknownModel, "no model"), 400, ErrInvalidRequest},
		{platform.Errorf(platform.CodeInvalidField, "bad"), 400, ErrInvalidRequest},
		{platform.Errorf(platform.CodePromptTooLong, "long"), 400, ErrInvalidRequest},
		{platform.Errorf(platform.CodeNoPermission, "no"), 403, ErrPermission},
		{&platform.Error{Code: platform.CodeBadParams, HTTP: 413, Message: "big"}, 413, ErrRequestTooLarge},
		{&platform.Error{Code: platform.CodeAPINotFound, HTTP: 404, Message: "none"}, 404, ErrNotFound},
	}
	for _, c := range cases {
		status, body := ErrorOf(c.err)
		if status != c.status || body.Type != c.typ || !strings.Contains(body.Message, "V4 code "+c.err.Code) {
			t.Errorf("%s: got %d %s %q, want %d %s with the V4 code", c.err.Code, status, body.Type, body.Message, c.status, c.typ)
		}
	}
}
