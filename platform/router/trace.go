package router

import "context"

// Trace records how the router served one request, for the request log
// and metrics. The router fills it in on the request's goroutine; read it
// after the call (for streams: after Close).
type Trace struct {
	// Backend is the name of the backend that served the request (or the
	// last one tried when all failed).
	Backend string
	// Attempts counts backends tried (1 = no failover).
	Attempts int
	// UpstreamModel is the engine's name for the model (after aliasing).
	UpstreamModel string
}

type traceKey struct{}

// WithTrace returns a context carrying a new Trace for the router to fill.
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := new(Trace)
	return context.WithValue(ctx, traceKey{}, t), t
}

// traceFrom returns the request's Trace, or a throwaway one.
func traceFrom(ctx context.Context) *Trace {
	if t, ok := ctx.Value(traceKey{}).(*Trace); ok {
		return t
	}
	return new(Trace)
}
