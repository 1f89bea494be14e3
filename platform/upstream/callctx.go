package upstream

import "context"

// callCtx is a context a caller made for one backend call, with its own
// CancelFunc (CallContext).
type callCtx struct {
	context.Context
	cancel context.CancelFunc
}

// CallContext marks ctx, which the caller made with cancel for one stream
// call and nothing else, as the backend's to cancel: a backend given it
// exactly runs the stream on it instead of deriving a cancellable context
// of its own. Each cancellable context costs a held stream its done
// channel and an entry in its parent's children for the stream's life
// (docs/design.md §6); the router already makes one per attempt, for the
// wait for the first chunk.
func CallContext(ctx context.Context, cancel context.CancelFunc) context.Context {
	return &callCtx{Context: ctx, cancel: cancel}
}

// streamContext is the context a stream runs on and the CancelFunc that
// ends it: ctx itself when it came from CallContext, else one derived
// from it.
func streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c, ok := ctx.(*callCtx); ok {
		return c, c.cancel
	}
	return context.WithCancel(ctx)
}
