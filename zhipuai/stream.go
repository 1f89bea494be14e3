package zhipuai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/glmkit/glmkit/internal/sse"
)

// Stream is a pull iterator over the events of a V4 stream, in the style of
// openai-go:
//
//	stream, err := client.Chat.Completions.Stream(ctx, req)
//	if err != nil { … }
//	defer stream.Close()
//	for stream.Next() {
//		chunk := stream.Current()
//		…
//	}
//	if err := stream.Err(); err != nil { … }
//
// The stream ends at "data: [DONE]" (docs/v4.md §4). A body that ends without it
// is an error wrapping io.ErrUnexpectedEOF; an in-band {"error":{…}} event
// is an *APIError; cancelling ctx stops a blocked read at once.
type Stream[T any] struct {
	ctx     context.Context
	body    io.ReadCloser
	reader  *sse.Reader
	header  http.Header
	cur     T
	err     error
	done    bool
	release func()
	stopCtx func() bool
	once    sync.Once
	closed  atomic.Bool
}

// newStream wraps an open 2xx response.
func newStream[T any](ctx context.Context, resp *http.Response, release func()) *Stream[T] {
	s := &Stream[T]{
		ctx:     ctx,
		body:    resp.Body,
		reader:  sse.NewReader(resp.Body),
		header:  resp.Header,
		release: release,
	}
	// net/http aborts the read when ctx ends, but a custom RoundTripper may
	// not: closing the body unblocks any reader.
	s.stopCtx = context.AfterFunc(ctx, func() { _ = resp.Body.Close() })
	return s
}

// Next advances to the next event and reports whether there is one. It
// returns false at [DONE] or on an error (see Err).
func (s *Stream[T]) Next() bool {
	if s.done || s.err != nil || s.closed.Load() {
		return false
	}
	for {
		ev, err := s.reader.Next()
		if err != nil {
			switch {
			case s.closed.Load():
				// Closed by the caller (maybe from another goroutine): a
				// deliberate stop, not a failure.
			case s.ctx.Err() != nil:
				s.err = fmt.Errorf("zhipuai: stream: %w", s.ctx.Err())
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				// A clean close or an aborted connection: either way the
				// platform never said [DONE], so the reply is incomplete.
				s.err = fmt.Errorf("zhipuai: stream ended before [DONE]: %w", io.ErrUnexpectedEOF)
			default:
				s.err = fmt.Errorf("zhipuai: stream: %w", err)
			}
			s.finish()
			return false
		}
		data := bytes.TrimSpace(ev.Data)
		if len(data) == 0 {
			continue // keep-alive or an empty event: nothing to decode
		}
		if ev.IsDone() || bytes.Equal(data, sse.Done) {
			s.done = true
			s.finish()
			return false
		}
		if apiErr := inBandError(ev.Type, data, s.header); apiErr != nil {
			s.err = apiErr
			s.finish()
			return false
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			s.err = fmt.Errorf("zhipuai: stream: decode event (%s): %w", truncateText(data, 80), err)
			s.finish()
			return false
		}
		s.cur = v
		return true
	}
}

// inBandError recognises a failure reported inside a 200 stream (docs/v4.md §4:
// `data: {"error":{"code","message"}}`, or an "error" event).
func inBandError(typ string, data []byte, header http.Header) *APIError {
	if typ != "error" && !bytes.Contains(data, []byte(`"error"`)) {
		return nil // fast path: ordinary chunks never mention it
	}
	var probe struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &probe) != nil {
		if typ == "error" {
			return &APIError{StatusCode: http.StatusOK, Message: truncateText(data, maxErrorMessage), Body: data, Header: header}
		}
		return nil
	}
	if len(probe.Error) == 0 || bytes.Equal(probe.Error, []byte("null")) {
		if typ == "error" {
			return newAPIError(http.StatusOK, header, bytes.Clone(data))
		}
		return nil
	}
	return newAPIError(http.StatusOK, header, bytes.Clone(data))
}

// Current returns the event Next moved to.
func (s *Stream[T]) Current() T { return s.cur }

// Err returns the error that ended the stream, nil after [DONE].
func (s *Stream[T]) Err() error { return s.err }

// Header returns the response headers of the stream.
func (s *Stream[T]) Header() http.Header { return s.header }

// Close releases the connection. It is safe to call more than once and
// after the stream ended.
func (s *Stream[T]) Close() error {
	s.closed.Store(true)
	s.finish()
	return nil
}

func (s *Stream[T]) finish() {
	s.once.Do(func() {
		s.stopCtx()
		_ = s.body.Close()
		if s.release != nil {
			s.release()
		}
	})
}
