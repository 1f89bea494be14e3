package platform

import (
	"context"
	"testing"
)

// TestReplyLease: a lease travels in the context, holds one buffer, and
// gives it back exactly once.
func TestReplyLease(t *testing.T) {
	if l := ReplyLeaseFrom(context.Background()); l != nil {
		t.Fatalf("ReplyLeaseFrom(no lease) = %p; want nil", l)
	}
	var l ReplyLease
	if got := ReplyLeaseFrom(WithReplyLease(context.Background(), &l)); got != &l {
		t.Fatalf("ReplyLeaseFrom = %p; want the lease %p", got, &l)
	}
	var back []*[]byte
	give := func(b *[]byte) { back = append(back, b) }
	a, b := new([]byte), new([]byte)
	l.Lend(a, give)
	l.Lend(b, give) // a second buffer is not held
	l.Return()
	l.Return()
	if len(back) != 1 || back[0] != a {
		t.Fatalf("given back %v; want the first buffer once", back)
	}
}
