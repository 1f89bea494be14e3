package platform

import "context"

// ReplyLease lets a caller that knows when a backend's reply is no longer
// read give back the buffer the reply was read into, for the backend's
// next call. An embeddings reply is relayed from the upstream's own bytes
// (zhipuai.Embedding.Raw points into them): tens of KB per request,
// allocated and cleared each time, were most of what an embeddings
// request left for the GC (docs/design.md §6). A backend lends only to a
// caller that asked (WithReplyLease); any other caller — a batch job
// keeping its results — gets a buffer of its own, as before.
type ReplyLease struct {
	buf      *[]byte
	giveBack func(*[]byte)
}

type replyLeaseKey struct{}

// WithReplyLease returns ctx carrying l. The caller promises to call
// l.Return once nothing reads the reply of the call made with ctx, and
// never after that.
func WithReplyLease(ctx context.Context, l *ReplyLease) context.Context {
	return context.WithValue(ctx, replyLeaseKey{}, l)
}

// ReplyLeaseFrom returns the lease ctx carries, nil when the caller asked
// for none.
func ReplyLeaseFrom(ctx context.Context) *ReplyLease {
	l, _ := ctx.Value(replyLeaseKey{}).(*ReplyLease)
	return l
}

// Lend records the buffer a successful reply was read into and how it
// goes back. A lease holds one buffer: a second one (which no backend
// lends) is left to the GC rather than risk giving back memory in use.
func (l *ReplyLease) Lend(buf *[]byte, giveBack func(*[]byte)) {
	if l.buf != nil {
		return
	}
	l.buf, l.giveBack = buf, giveBack
}

// Return gives the lent buffer back, if any; the reply must not be read
// after it.
func (l *ReplyLease) Return() {
	if l.buf == nil {
		return
	}
	l.giveBack(l.buf)
	l.buf, l.giveBack = nil, nil
}
