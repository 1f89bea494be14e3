package router

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
)

// ChatStream implements platform.ChatBackend. It returns once a backend has
// produced the first chunk: everything that goes wrong until then —
// connection refused, no headers in time, 5xx, 429, an in-band 1305, a
// stream cut before its first chunk — is still before the first byte to
// the client, so the next backend is tried (Portkey #1797: an upstream cut
// before any data must not become a clean empty 200). After the first chunk
// nothing is retried (docs/design.md §3): errors surface from Next.
func (r *Router) ChatStream(ctx context.Context, req platform.ChatRequest) (platform.Stream, error) {
	if req.Req == nil {
		return nil, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	rt, err := r.lookup(req.Req.Model, platform.KindChat, platform.KindVision)
	if err != nil {
		return nil, err
	}
	return attemptStream(r, ctx, rt, chatNeed(rt, req.Req), req)
}

// attemptStream opens a stream on each planned target until one produces
// its first chunk. A stream that opened keeps its slot until it is closed.
func attemptStream(r *Router, ctx context.Context, rt *route, need int, req platform.ChatRequest) (platform.Stream, error) {
	return failover(r, ctx, rt, need, startRetryable, func(t *target) (platform.Stream, error) {
		start := r.now()
		r.obs.begin(t.m)
		s, err := r.openStream(ctx, t, chatRequest(req, t))
		if err != nil {
			r.obs.done(t.m, r.now().Sub(start))
			r.finish(ctx, t.m, err)
			return nil, err
		}
		r.obs.firstChunk(t.m, r.now().Sub(start))
		s.start = start
		return s, nil
	})
}

// startRetryable: before the first chunk a cut stream is as retryable as a
// refused connection.
func startRetryable(err error) bool {
	if upstream.Retryable(err) {
		return true
	}
	var pe *platform.Error
	return errors.As(err, &pe) && pe.Code == platform.CodeNetwork
}

// openStream starts a stream on t and reads its first chunk, all within the
// backend's timeout. On success the returned stream owns t's slot. t is
// passed by pointer: a target by value (its ModelInfo) widened the frame
// of every call on the way to the upstream request, the deepest moment of
// a stream's handler goroutine, whose stack stays that size while the
// stream is held (docs/design.md §6).
func (r *Router) openStream(ctx context.Context, t *target, req platform.ChatRequest) (*routedStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	timer := time.AfterFunc(t.m.timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	fail := func(err error) (*routedStream, error) {
		timer.Stop()
		cancel()
		if timedOut.Load() && ctx.Err() == nil {
			err = timeoutError(t.m, err)
		}
		return nil, err
	}
	// The backend may run the stream on sctx itself rather than on a
	// context of its own (upstream.CallContext): sctx serves this one call.
	s, err := t.m.chat.ChatStream(upstream.CallContext(sctx, cancel), req)
	if err != nil {
		return fail(err)
	}
	first, err := s.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		_ = s.Close()
		return fail(err)
	}
	if !timer.Stop() {
		// The timer fired just as the first chunk came: the stream's context
		// is cancelled, so it cannot go on.
		_ = s.Close()
		return fail(context.DeadlineExceeded)
	}
	// The backend answered properly: that closes its circuit now, not
	// when a long stream ends.
	t.m.brk.success()
	// first.Data stays valid: s is not read again until the relay has it.
	rs := &routedStream{r: r, ctx: ctx, m: t.m, s: s, cancel: cancel, first: first, firstErr: err}
	return rs, nil
}

// routedStream hands out the pre-read first chunk, then the backend's
// stream; it holds the backend's concurrency slot until Close.
type routedStream struct {
	r      *Router
	ctx    context.Context
	m      *member
	s      platform.Stream
	cancel context.CancelFunc

	start    time.Time
	first    platform.Chunk
	firstErr error // io.EOF when the stream was empty
	started  bool
	failed   bool

	once sync.Once
}

// Next implements platform.Stream.
func (s *routedStream) Next() (platform.Chunk, error) {
	if !s.started {
		s.started = true
		if s.firstErr != nil {
			return platform.Chunk{}, s.firstErr
		}
		return s.first, nil
	}
	ch, err := s.s.Next()
	if err != nil && !errors.Is(err, io.EOF) && !s.failed && s.ctx.Err() == nil && backendFault(err) {
		// A failure after the first byte is not retried, but it counts
		// against the backend's health.
		s.failed = true
		s.r.obs.streamFailed(s.ctx, s.m, err)
		s.m.brk.failure(s.r.now())
	}
	return ch, err
}

// backendFault tells a broken backend (cut stream, upstream error,
// overload) from an answer about the content (e.g. 1301 sensitive).
func backendFault(err error) bool {
	if upstream.Retryable(err) {
		return true
	}
	var pe *platform.Error
	if !errors.As(err, &pe) {
		return true
	}
	switch pe.Code {
	case platform.CodeNetwork, platform.CodeInternal, platform.CodeOverloaded:
		return true
	}
	return false
}

// Close implements platform.Stream: it cancels a stream not yet ended and
// frees the backend's concurrency slot. The backend's Close runs first: a
// stream that ended is read to its end there so its connection is reused,
// which cancelling its context before would prevent.
func (s *routedStream) Close() error {
	err := s.s.Close()
	s.cancel()
	s.once.Do(func() {
		s.r.obs.done(s.m, s.r.now().Sub(s.start))
		if s.m.sem != nil {
			<-s.m.sem
		}
	})
	return err
}
