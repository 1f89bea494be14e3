package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/glmkit/glmkit/platform"
)

// ErrRetryable marks a failure another backend may not have: a connection
// error, a timeout before the reply started, a 5xx or a 429 from the
// upstream, an upstream that rejects the operator's own key. Backends wrap
// it into the cause (platform.Error.Err) so errors.Is sees it; the router
// fails over on it, but only before the first byte of a reply (docs/design.md §3).
var ErrRetryable = errors.New("retryable upstream failure")

// Retryable reports whether err lets the router try another backend.
func Retryable(err error) bool { return errors.Is(err, ErrRetryable) }

// retryable builds a *platform.Error marked with ErrRetryable.
func retryable(code, message string, cause error) *platform.Error {
	if cause == nil {
		cause = ErrRetryable
	} else {
		cause = fmt.Errorf("%w: %w", ErrRetryable, cause)
	}
	return &platform.Error{Code: code, Message: message, Err: cause}
}

// transportError turns a failed round trip (no reply at all) into a V4
// error. A cancelled client context is not the backend's fault and is not
// retryable; everything else is a network error (1234), retryable.
func transportError(ctx context.Context, backend string, err error) *platform.Error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return platform.Wrap(platform.CodeNetwork, "request cancelled", err)
	}
	e := retryable(platform.CodeNetwork, "upstream network error", fmt.Errorf("backend %s: %w", backend, err))
	e.HTTP = http.StatusBadGateway
	return e
}

// streamCut is the error of a stream that ended without [DONE] (docs/v4.md §4:
// a cut stream must surface as an error, never as a clean end).
func streamCut(backend string, err error) *platform.Error {
	return platform.Wrap(platform.CodeNetwork, "upstream stream ended unexpectedly",
		fmt.Errorf("backend %s: %w", backend, err))
}
