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
	// Interval is how long a row waits at most before it is written
	// (default 200 ms); it starts with the first row to wait.
	Interval time.Duration
	// MaxRows flushes early when this many rows wait, and is the most rows
	// one insert carries (default 500).
	MaxRows int
	// Buffer is how many rows may wait while a batch is being written;
	// Record blocks when that many wait, which slows requests rather than
	// losing rows (default 8192). The rows wait in a slice that grows as
	// the load needs it, not a preallocated buffer: 8192 rows by value are
	// ~2 MB that an idle server would keep resident (docs/design.md §6).
	Buffer int
	Logger *slog.Logger
	// Metrics receives each write's time and rows and each failure [none].
	Metrics *Metrics
	// OnCut, when set, counts each client-supplied field Bound had to cut
	// (metrics).
	OnCut func(field string)
}

// Batcher buffers rows and writes them in batches.
//
// Record appends the row to a slice under a mutex and returns: the writer
// goroutine is woken only by its interval (which starts with the first row
// to wait), a full batch, Flush or Close, never once per row. Record runs
// on the request's path before the HTTP server sends the reply, so a
// channel send per row (a goroutine wake per request) was latency every
// client paid (docs/design.md §6).
type Batcher struct {
	sink Sink
	opts Options

	mu      sync.Mutex
	pending []platform.RequestLog // rows recorded, not yet taken by the writer
	closed  bool
	room    *sync.Cond    // signalled when the writer takes the pending rows
	full    chan struct{} // wakes the writer: MaxRows rows wait (cap 1)
	arm     chan struct{} // starts the writer's Interval: a first row waits (cap 1)
	stop    chan struct{} // closed by Close
	done    chan struct{}
	flushQ  chan chan struct{}

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
	b := &Batcher{sink: sink, opts: opts, full: make(chan struct{}, 1), arm: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), flushQ: make(chan chan struct{})}
	b.room = sync.NewCond(&b.mu)
	go b.loop()
	return b
}

// Record queues one row. After Close it writes the row at once, so a
// request that finishes during shutdown is still recorded.
func (b *Batcher) Record(row platform.RequestLog) {
	b.bound(&row)
	b.mu.Lock()
	for !b.closed && len(b.pending) >= b.opts.Buffer {
		// Back-pressure: the writer is behind (a slow or failing store).
		platform.Wake(b.full)
		b.room.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		b.write(context.Background(), []platform.RequestLog{row})
		return
	}
	b.pending = append(b.pending, row)
	if n := len(b.pending); n == b.opts.MaxRows {
		platform.Wake(b.full)
	} else if n == 1 {
		// The first row starts the writer's interval: its timer runs only
		// while something waits, so an idle server is not woken to find
		// nothing (docs/design.md §6 "Idle wake-ups"). One send per batch.
		platform.Wake(b.arm)
	}
	b.mu.Unlock()
}

// take swaps the pending rows for batch's emptied array, so Records go
// on while the batch is written.
func (b *Batcher) take(batch []platform.RequestLog) []platform.RequestLog {
	b.mu.Lock()
	batch, b.pending = b.pending, batch[:0]
	b.room.Broadcast()
	b.mu.Unlock()
	return batch
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
		platform.Wake(b.arm) // written with the next batch, or alone
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
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil
	}
	ack := make(chan struct{})
	select {
	case b.flushQ <- ack:
	case <-b.done:
		return nil // closed meanwhile: Close wrote everything
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
	// From here Record writes its row itself; the loop takes what is
	// pending after this, so no row is left behind.
	b.closed = true
	b.room.Broadcast()
	b.mu.Unlock()
	close(b.stop)
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return errors.New("requestlog: flush on close did not finish in time")
	}
}

func (b *Batcher) loop() {
	defer close(b.done)
	tick := time.NewTimer(b.opts.Interval)
	tick.Stop()
	defer tick.Stop()
	armed := false
	var batch []platform.RequestLog
	flush := func() {
		for {
			batch = b.take(batch)
			if len(batch) == 0 {
				// Idle: let the GC have the array, so an idle server
				// keeps no buffer sized for its last burst
				// (docs/design.md §6). Under load both arrays are kept
				// and Record appends without growing one.
				batch = nil
				b.touch(context.Background(), b.takeTouched())
				return
			}
			for rows := batch; len(rows) > 0; {
				n := min(len(rows), b.opts.MaxRows)
				b.write(context.Background(), rows[:n])
				rows = rows[n:]
			}
			clear(batch) // drop the rows' strings now, not at the next fill
			b.mu.Lock()
			more := len(b.pending) >= b.opts.MaxRows
			b.mu.Unlock()
			if !more {
				return
			}
		}
	}
	for {
		select {
		case <-b.stop:
			flush()
			return
		case <-b.full:
			flush()
		case ack := <-b.flushQ:
			flush()
			close(ack)
		case <-b.arm:
			if !armed {
				tick.Reset(b.opts.Interval)
				armed = true
			}
		case <-tick.C:
			armed = false
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
			b.opts.Metrics.flushed(len(rows), time.Since(start))
			return
		}
		b.opts.Metrics.failed()
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
