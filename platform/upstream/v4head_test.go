package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// The first chunk of a stream is scanned, not decoded, when it is plain
// text: the id and created it leaves for a made-up final chunk must be
// the ones the full decode reads, and a head the scan does not read the
// same way (escaped or non-string id, created not an int64) must end as
// the full decode ends it.
func TestFirstChunkHeadAgreesWithFullDecode(t *testing.T) {
	heads := []string{
		`"id":"abc","created":1733000000`,
		`"created":7,"id":"x-1"`,
		`"id":"\u0061bc","created":3`,
		`"id":"a\"b","created":3`,
		`"id":null,"created":3`,
		`"id":5,"created":3`,
		`"id":"abc","created":null`,
		`"id":"abc","created":1.5`,
		`"id":"abc","created":1e3`,
		`"id":"abc","created":"3"`,
		`"id":"abc","created":99999999999999999999`,
		`"id":"abc","created":-4`,
		`"id":"abc"`,
		`"created":3`,
		`"id":"","created":3`,
		`"id":"one","id":"two","created":1,"created":2`,
	}
	for _, h := range heads {
		first := `{` + h + `,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}`
		second := `{"id":"later","created":9,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"there"}}]}`
		body := "data: " + first + "\n\ndata: " + second + "\n\ndata: [DONE]\n\n"
		var want zhipuai.ChatCompletionChunk
		wantErr := json.Unmarshal([]byte(first), &want)
		if wantErr == nil && want.ID == "" {
			// The old path kept looking for an id in the next chunks.
			want.ID, want.Created = "later", 9
		}

		ctx, cancel := context.WithCancel(context.Background())
		resp := &http.Response{Body: io.NopCloser(strings.NewReader(body))}
		s := newV4Stream(ctx, cancel, "t", resp, platform.ChatRequest{Req: userChat("glm-4", "hello")})
		datas, chunks, err := drain(t, s)
		s.Close()
		if wantErr != nil {
			if err == nil || platform.AsError(err).Code != platform.CodeInternal {
				t.Errorf("%s: got err %v, want the invalid-chunk error (%v)", h, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: got err %v, want none", h, err)
			continue
		}
		if len(chunks) != 3 || string(datas[0]) != first {
			t.Errorf("%s: got %d chunks, first %s; want 3, the first as it came", h, len(chunks), datas[0])
			continue
		}
		if f := chunks[2]; f.ID != want.ID || f.Created != want.Created && !(want.Created == 0 && f.Created > 0) {
			// created 0 is made up from the clock (synthFinal).
			t.Errorf("%s: final chunk id %q created %d, want %q %d", h, f.ID, f.Created, want.ID, want.Created)
		}
	}
}
