package upstream

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/zhipuai"
)

// finalCases are chunks that end a stream (usage, finish_reason) and
// their neighbours. pass says the scan takes the chunk for a stream that
// has sent no usage yet and whose client asked for glm-4.
var finalCases = []struct {
	line string
	pass bool
}{
	// The cloud's final chunk, and the same with usage details, keys in
	// another order, white space, unknown keys, a second choice.
	{`{"id":"1","created":5,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, true},
	{`{"id":"1","model":"glm-4","choices":[{"index":0,"finish_reason":"length","delta":{"role":"assistant","content":"末"}}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}`, true},
	{` { "usage" : { "total_tokens" : 0 } , "choices" : [ { "delta" : { "role" : "assistant" } , "finish_reason" : "tool_calls" } ] , "model" : "glm-4" } `, true},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant","content":"a\nb"}},{"index":1,"finish_reason":null,"delta":{"role":"assistant","content":"c"}}],"usage":{"prompt_tokens":-1,"completion_tokens":0,"total_tokens":1,"extra":{"x":[1]}},"web_search":[{"title":"t"}],"content_filter":[{"role":"assistant","level":1}]}`, true},
	{`{"model":"glm-4","choices":[{"finish_reason":"sensitive","delta":{"role":"assistant"}}],"usage":{}}`, true},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens_details":{},"completion_tokens_details":{}}}`, true},
	// Usage the scan is not sure of: the decode reads it.
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":1.0}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":1e2}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":"1"}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":null}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"Prompt_Tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":1,"prompt_tokens":2}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens":99999999999999999999}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens_details":null}}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"prompt_tokens_details":{"cached_tokens":1,"x":2}}}`, true},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":[]}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"total_tokens":1},"usage":null}`, false},
	{`{"model":"glm-4","choices":[{"finish_reason":"stop","delta":{"role":"assistant"}}],"choices":[],"usage":{"total_tokens":1}}`, false},
	// Chunks shape rewrites: the decode does it, as before.
	{`{"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"","delta":{"role":"assistant"}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"st\u006fp","delta":{"role":"assistant"}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"content":""}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop"}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","usage":{"total_tokens":1}}`, false},
	{`{"model":"other","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"total_tokens":1}}`, false},
	{`{"choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":7,"delta":{"role":"assistant"}}],"usage":{"total_tokens":1}}`, false},
	// A finish_reason without usage is held back by shape; text with a
	// null usage is an ordinary text chunk.
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"tool_calls","delta":{"role":"assistant","content":"x"}}]}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":null,"delta":{"role":"assistant","content":"x"}}],"usage":null}`, true},
	{`{"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}],"error":{"code":"1301","message":"m"},"usage":{"total_tokens":1}}`, false},
	{`{"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant"}}],"usage":{"total_tokens":1}} x`, false},
}

// agreeScanned runs line through the scan path (scanned) and, on a twin
// stream in the same state, the full path (decoded). When the scan takes
// it, both must return the same chunk (bytes, or for a splice what a
// client decodes), usage and tokens, and leave the same stream state
// behind. It reports whether the scan took the chunk.
func agreeScanned(t testing.TB, line string, finalSent bool, id, model string) bool {
	t.Helper()
	twin := func() *v4Stream {
		return &v4Stream{model: model, id: id, finalSent: finalSent, heldFinish: "tool_calls",
			req: userChat("glm-4", "x"), r: sse.NewReader(strings.NewReader(""))}
	}
	a, b := twin(), twin()
	data := []byte(line)
	got, ok := a.scanned(data)
	if !ok {
		return false
	}
	want, keep := b.decoded(bytes.Clone(data))
	if b.err != nil || !keep {
		t.Fatalf("%s: the scan took a chunk the full path refuses (keep %v, err %v)", line, keep, b.err)
	}
	if bytes.Equal(got.Data, data) || bytes.Equal(want.Data, data) {
		if !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("%s: got bytes %s, want %s", line, got.Data, want.Data)
		}
	} else {
		var g, w zhipuai.ChatCompletionChunk
		if json.Unmarshal(got.Data, &g) != nil || json.Unmarshal(want.Data, &w) != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: got %s, want %s", line, got.Data, want.Data)
		}
	}
	if !reflect.DeepEqual(got.Usage, want.Usage) || got.Tokens != want.Tokens || got.More != want.More {
		t.Fatalf("%s: got usage %+v tokens %d, want %+v tokens %d", line, got.Usage, got.Tokens, want.Usage, want.Tokens)
	}
	if a.finalSent != b.finalSent || a.completion != b.completion || a.heldFinish != b.heldFinish ||
		a.id != b.id || a.created != b.created {
		t.Fatalf("%s: stream state got final %v completion %d held %q id %q created %d, want %v %d %q %q %d", line,
			a.finalSent, a.completion, a.heldFinish, a.id, a.created, b.finalSent, b.completion, b.heldFinish, b.id, b.created)
	}
	return true
}

// The final chunk is read without a decode when the full path would pass
// it as it came; the scan never takes one the full path would change.
func TestFinalChunkScanAgreesWithFullDecode(t *testing.T) {
	for _, c := range finalCases {
		if got := agreeScanned(t, c.line, false, "1", "glm-4"); got != c.pass {
			t.Errorf("%s: scan path %v, want %v", c.line, got, c.pass)
		}
		// Every state of the stream agrees too: a stream whose usage was
		// sent, one without an id yet, one that keeps the upstream's model.
		agreeScanned(t, c.line, true, "1", "glm-4")
		agreeScanned(t, c.line, false, "", "glm-4")
		agreeScanned(t, c.line, false, "1", "")
	}
	// A second usage after the first one goes out as it came, even
	// without a finish_reason.
	line := `{"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":{"total_tokens":1}}`
	if !agreeScanned(t, line, true, "1", "glm-4") {
		t.Errorf("a later usage chunk: scan path false, want true")
	}
}

// FuzzScannedChunk: whatever the scan takes, the full path returns too.
func FuzzScannedChunk(f *testing.F) {
	for _, c := range finalCases {
		f.Add(c.line, false, true)
	}
	f.Add(`{"id":"x","created":3,"model":"glm-4","choices":[{"index":0,"delta":{"content":"t"}}]}`, false, false)
	f.Fuzz(func(t *testing.T, line string, finalSent, model bool) {
		m := ""
		if model {
			m = "glm-4"
		}
		agreeScanned(t, line, finalSent, "", m)
		agreeScanned(t, line, finalSent, "1", m)
	})
}
