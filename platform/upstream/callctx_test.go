package upstream

import (
	"context"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// A stream given a CallContext runs on it: closing the stream cancels
// that context, the one the caller made for the call. Any other context
// is the caller's and only a child of it is cancelled.
func TestStreamRunsOnTheCallersCallContext(t *testing.T) {
	u := newCountingUpstream(t, sseHandler(v4Events...))
	z, err := NewZhipu(ZhipuOptions{BaseURL: u.URL, APIKey: "id.secret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, marked := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		call := ctx
		if marked {
			call = CallContext(ctx, cancel)
		}
		s, err := z.ChatStream(call, platform.ChatRequest{Req: userChat("glm-4", "x")})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.(*v4Stream).ctx == call; got != marked {
			t.Errorf("marked %v: the stream runs on the caller's context: got %v, want %v", marked, got, marked)
		}
		if _, _, err := drain(t, s); err != nil {
			t.Fatalf("marked %v: %v", marked, err)
		}
		_ = s.Close()
		if got := ctx.Err() != nil; got != marked {
			t.Errorf("marked %v: Close cancelled the caller's context: got %v, want %v", marked, got, marked)
		}
		cancel()
	}
}
