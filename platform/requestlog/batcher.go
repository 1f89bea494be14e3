// Package requestlog records every request exactly once without a
// synchronous database write on the hot path: handlers hand rows to a
// Batcher, which writes them in one transaction every Interval or every
// MaxRows rows, together with the keys' last-used times (docs/peers.md §2
// item 13: a per-request DB write is what caps one-api at ~240 rps).
package requestlog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Sink is where batches go.
type Sink interface {
	InsertRequestLogs(ctx context.Context, rows []platform.RequestLog) error
	TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error
}

// Options tune a Batcher.
type Options struct {
	// Interval between flushes (default 200 ms).
	Interval time.Duration
	// MaxRows flushes early when this many rows wait (default 500).
	MaxRows int
	// Buffer is the channel size; Record blocks when it is full, which
	// slows requests rather than losing rows (default 8192). The channel
	// carries pointers to reused rows, not rows: 8192 rows by value are
	// ~2 MB that an idle server would keep resident (docs/design.md §6).
	Buffer int
	Logger *slog.Logger
	// OnFlush, when set, observes each successful flush (metrics).
	OnFlush func(rows int, took time.Duration)
	// OnCut, when set, counts each client-supplied field Bound had to cut
	// (metrics).
	OnCut func(field string)
}

// Batcher buffers rows and writes them in batches.
type Batcher struct {
	sink Sink
	opts Options
	in   chan *platform.RequestLog
	// free holds the rows the loop has taken, for Record to reuse: rows
	// are allocated as the load needs them, once, and never cleared by
	// the GC as a sync.Pool's are (an allocation per request again).
	free chan *platform.RequestLog

	mu     sync.RWMutex
	closed bool
	done   chan struct{}
	flushQ chan chan struct{}

	// touchMu guards touched: the last use of keys whose rows the meter
	// stored (Prepare), written with the next batch.
	touchMu sync.Mutex
	touched map[string]time.Time
}

// New starts a Batcher; Close flushes and stops it.
func New(sink Sink, opts Options) *Batcher {
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 500
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 8192
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Batcher{sink: sink, opts: opts, in: make(chan *platform.RequestLog, opts.Buffer),
		free: make(chan *platform.RequestLog, opts.Buffer),
		done: make(chan struct{}), flushQ: make(chan chan struct{})}
	go b.loop()
	return b
}

// Record queues one row. After Close it writes the row at once, so a
// request that finishes during shutdown is still recorded.
func (b *Batcher) Record(row platform.RequestLog) {
	b.bound(&row)
	b.mu.RLock()
	if !b.closed {
		var p *platform.RequestLog
		select {
		case p = <-b.free:
		default:
			p = new(platform.RequestLog)
		}
		*p = row
		b.in <- p
		b.mu.RUnlock()
		return
	}
	b.mu.RUnlock()
	b.write(context.Background(), []platform.RequestLog{row})
}

// take appends a queued row to pending and hands its holder back to
// Record.
func (b *Batcher) take(pending []platform.RequestLog, p *platform.RequestLog) []platform.RequestLog {
	pending = append(pending, *p)
	*p = platform.RequestLog{}
	select {
	case b.free <- p:
	default:
	}
	return pending
}

// Prepare readies a row another writer stores — the billing flush writes
// a charged call's row in the transaction of its usage row
// (docs/design.md §3 "Crash consistency"): its client fields are bounded
// as Record bounds them, and its key's last use is kept for the next
// batch.
func (b *Batcher) Prepare(row *platform.RequestLog) {
	b.bound(row)
	if row.KeyID == "" {
		return
	}
	b.touchMu.Lock()
	if b.touched == nil {
		b.touched = map[string]time.Time{}
	}
	if row.CreatedAt.After(b.touched[row.KeyID]) {
		b.touched[row.KeyID] = row.CreatedAt
	}
	b.touchMu.Unlock()
}

// takeTouched returns and clears the keys Prepare saw.
func (b *Batcher) takeTouched() map[string]time.Time {
	b.touchMu.Lock()
	defer b.touchMu.Unlock()
	t := b.touched
	b.touched = nil
	return t
}

// bound applies Bound to a row before it is queued: every row reaches
// storage through Record, so no caller can store an unbounded value.
func (b *Batcher) bound(row *platform.RequestLog) {
	for _, f := range Bound(row) {
		b.opts.Logger.Warn("requestlog: cut an over-long or invalid client field before storing it",
			"id", row.ID, "field", f, "endpoint", row.Endpoint, "code", row.ErrorCode)
		if b.opts.OnCut != nil {
			b.opts.OnCut(f)
		}
	}
}

// Flush writes everything recorded so far and returns when it is stored
// (tests and admin reads use it to see their own rows).
func (b *Batcher) Flush(ctx context.Context) error {
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return nil
	}
	ack := make(chan struct{})
	select {
	case b.flushQ <- ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes the remaining rows and stops the loop.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.in) // no Record holds the read lock now, so none can send
	b.mu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return errors.New("requestlog: flush on close did not finish in time")
	}
}

func (b *Batcher) loop() {
	defer close(b.done)
	tick := time.NewTicker(b.opts.Interval)
	defer tick.Stop()
	var pending []platform.RequestLog
	flush := func() {
		if len(pending) == 0 {
			b.touch(context.Background(), b.takeTouched())
			return
		}
		b.write(context.Background(), pending)
		pending = pending[:0]
	}
	for {
		select {
		case row, ok := <-b.in:
			if !ok {
				flush()
				return
			}
			pending = b.take(pending, row)
			if len(pending) >= b.opts.MaxRows {
				flush()
			}
		case ack := <-b.flushQ:
			// Take what is already queued, then write.
			for drained := false; !drained; {
				select {
				case row, ok := <-b.in:
					if !ok {
						drained = true
						break
					}
					pending = b.take(pending, row)
				default:
					drained = true
				}
			}
			flush()
			close(ack)
		case <-tick.C:
			flush()
		}
	}
}

// write stores rows, retrying until it succeeds: the insert skips ids
// already stored, so a retry after an ambiguous failure adds nothing twice.
func (b *Batcher) write(ctx context.Context, rows []platform.RequestLog) {
	touched := b.takeTouched()
	if touched == nil {
		touched = map[string]time.Time{}
	}
	for _, r := range rows {
		if r.KeyID != "" && r.CreatedAt.After(touched[r.KeyID]) {
			touched[r.KeyID] = r.CreatedAt
		}
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := b.sink.InsertRequestLogs(ctx, rows)
		if err == nil {
			b.touch(ctx, touched)
			if b.opts.OnFlush != nil {
				b.opts.OnFlush(len(rows), time.Since(start))
			}
			return
		}
		b.opts.Logger.Error("requestlog: flush failed; retrying", "rows", len(rows), "attempt", attempt, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}

// touch stores keys' last-used times.
func (b *Batcher) touch(ctx context.Context, touched map[string]time.Time) {
	if len(touched) == 0 {
		return
	}
	if err := b.sink.TouchKeys(ctx, touched); err != nil {
		// Last-used times are advisory; the next batch moves them on.
		b.opts.Logger.Warn("requestlog: touch keys", "err", err)
	}
}
