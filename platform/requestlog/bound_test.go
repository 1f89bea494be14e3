package requestlog

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

func TestBoundKeepsValidValuesAndCutsTheRest(t *testing.T) {
	for _, tc := range []struct {
		name             string
		reqID, model     string
		wantID, wantModl string
		cut              string
	}{
		{"valid", "req-1", "glm-4", "req-1", "glm-4", ""},
		{"longest valid", strings.Repeat("r", 128), strings.Repeat("m", 128), strings.Repeat("r", 128), strings.Repeat("m", 128), ""},
		{"long request id", strings.Repeat("r", 1<<20), "glm-4", strings.Repeat("r", 128), "glm-4", "request_id"},
		{"request id with control bytes", "a\nb\x00c", "glm-4", "a?b?c", "glm-4", "request_id"},
		{"long model", "", strings.Repeat("m", 1<<20), "", strings.Repeat("m", 128), "model"},
		{"model cut inside a character", "", strings.Repeat("m", 127) + "模型", "", strings.Repeat("m", 127) + "?", "model"},
		{"model not UTF-8", "", "glm\xff", "", "glm?", "model"},
	} {
		row := platform.RequestLog{RequestID: tc.reqID, Model: tc.model}
		cut := Bound(&row)
		if row.RequestID != tc.wantID || row.Model != tc.wantModl || strings.Join(cut, ",") != tc.cut {
			t.Errorf("%s: got request_id %.20q (%d bytes), model %.20q (%d bytes), cut %v; want %.20q, %.20q, cut %q",
				tc.name, row.RequestID, len(row.RequestID), row.Model, len(row.Model), cut, tc.wantID, tc.wantModl, tc.cut)
		}
		if len(row.RequestID) > zhipuai.MaxRequestIDLen || len(row.Model) > zhipuai.MaxModelLen || !utf8.ValidString(row.Model) {
			t.Errorf("%s: stored values out of bounds", tc.name)
		}
	}
}

// Through the batcher into a real database: the stored row is bounded and
// the cut counted.
func TestBatcherStoresBoundedRows(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	cuts := map[string]int{}
	b := New(s, Options{Interval: 5 * time.Millisecond, OnCut: func(f string) { mu.Lock(); cuts[f]++; mu.Unlock() }})
	b.Record(platform.RequestLog{ID: "r1", CreatedAt: time.Now(), Endpoint: platform.EndpointChat, HTTPStatus: 400,
		ErrorCode: platform.CodeInvalidField, RequestID: strings.Repeat("x", 4<<20), Model: strings.Repeat("y", 4<<20)})
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(rows[0].RequestID) != zhipuai.MaxRequestIDLen || len(rows[0].Model) != zhipuai.MaxModelLen {
		t.Fatalf("got %d rows, request_id %d bytes, model %d bytes; want 1 row with both cut to 128", len(rows),
			len(rows[0].RequestID), len(rows[0].Model))
	}
	mu.Lock()
	defer mu.Unlock()
	if cuts["request_id"] != 1 || cuts["model"] != 1 {
		t.Fatalf("got cuts %v, want one of each", cuts)
	}
}
