package upstream

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// DefaultStreamIdle bounds the silence of a stream that has begun: a
// backend that sends no byte for this long is cut (docs/design.md §3
// "Every connection is bounded"). The wait for the first byte is the
// backend's own timeout, not this one: a long prompt may take a while.
const DefaultStreamIdle = 120 * time.Second

// idleBody is a stream body that is cancelled when no byte arrives for d
// once the first one has. Bytes count, not events: an engine's keep-alive
// comments, or a tool call streamed in fragments the translator holds
// back, keep the stream alive.
type idleBody struct {
	io.ReadCloser
	d      time.Duration
	cancel context.CancelFunc
	timer  *time.Timer
	fired  atomic.Bool
}

// newIdleBody wraps a stream body; d ≤ 0 leaves it unbounded.
func newIdleBody(rc io.ReadCloser, d time.Duration, cancel context.CancelFunc) io.ReadCloser {
	if d <= 0 {
		return rc
	}
	return &idleBody{ReadCloser: rc, d: d, cancel: cancel}
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(b.d, func() {
				b.fired.Store(true)
				b.cancel()
			})
		} else {
			b.timer.Reset(b.d)
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.ReadCloser.Close()
}

// idleError is the stream's error when its body was cut for silence, else
// nil. It wraps context.DeadlineExceeded, which is how the HTTP layer
// tells this cut from others.
func idleError(body io.Reader, backend string) error {
	b, ok := body.(*idleBody)
	if !ok || !b.fired.Load() {
		return nil
	}
	return platform.Wrap(platform.CodeNetwork, fmt.Sprintf("the model backend sent nothing for %s; the stream was cut", b.d),
		fmt.Errorf("backend %s: no bytes for %s: %w", backend, b.d, context.DeadlineExceeded))
}

// streamIdle is the configured bound: 0 is the default, negative none.
func streamIdle(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultStreamIdle
	}
	return d
}
