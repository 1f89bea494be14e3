package httpapi

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// recordingMeter keeps every reservation request and charges nothing.
type recordingMeter struct {
	mu   sync.Mutex
	reqs []platform.ReserveRequest
}

func (m *recordingMeter) Reserve(_ context.Context, req platform.ReserveRequest) (platform.Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reqs = append(m.reqs, req)
	return platform.NopMeter{}.Reserve(context.Background(), req)
}

func (m *recordingMeter) byEndpoint(endpoint string) []platform.ReserveRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []platform.ReserveRequest
	for _, r := range m.reqs {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

// A sync chat (the HTTP handler) and an async chat (the task pool) with
// the same body and no max_tokens reserve the same amount: both go
// through the one metered call, which reserves the model's MaxOutput.
func TestSyncAndAsyncChatReserveTheSame(t *testing.T) {
	rec := &recordingMeter{}
	e := newEnv(t, func(_ *proxyConfig, _ *Options, to *taskOptions) { to.Calls.Meter = rec })
	e.up.Enqueue(zhipuaitest.Text("ok").Times(2))
	const body = `{"model":"glm-4","messages":[{"role":"user","content":"一样的问题 the same question"}]}`

	if b := read(t, e.do("POST", "/chat/completions", body)); len(b) == 0 {
		t.Fatal("empty sync reply")
	}
	var sub zhipuai.AsyncTaskStatus
	if err := json.Unmarshal(read(t, e.do("POST", "/async/chat/completions", body)), &sub); err != nil || sub.ID == "" {
		t.Fatalf("submit: %+v %v", sub, err)
	}
	waitFor(t, "the task to run", func() bool {
		got, _ := e.poll(sub.ID)
		return got.TaskStatus != "PROCESSING"
	})

	sync, async := rec.byEndpoint(platform.EndpointChat), rec.byEndpoint(platform.EndpointAsyncTask)
	if len(sync) != 1 || len(async) != 1 {
		t.Fatalf("got %d sync and %d async reservations, want 1 each", len(sync), len(async))
	}
	if len(rec.byEndpoint(platform.EndpointAsyncSubmit)) != 0 {
		t.Fatal("the submission reserved; only the task's execution may")
	}
	s, a := sync[0], async[0]
	if a.MaxTokens != s.MaxTokens || a.PromptTokens != s.PromptTokens || a.Model != s.Model {
		t.Fatalf("async reserved %d+%d tokens of %s, sync %d+%d of %s; want the same",
			a.PromptTokens, a.MaxTokens, a.Model, s.PromptTokens, s.MaxTokens, s.Model)
	}
	if info, _ := platform.LookupZhipuModel("glm-4"); s.MaxTokens != info.MaxOutput {
		t.Fatalf("reserved %d output tokens, want glm-4's MaxOutput %d", s.MaxTokens, info.MaxOutput)
	}
}
