package metered

import (
	"context"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// End settles the reservation, releases the permit and records the row:
// exactly once, however the call went (a second End does nothing). A
// stream still open is closed first. Settling runs on ctx's values but not
// its cancellation: a caller that is gone, or a process shutting down,
// still pays for what it used.
//
// A charged call's row goes to the meter with the settlement when the
// meter can store it (platform.RecordingReservation): the usage row and
// the request-log row are then written in one transaction, so a crash at
// any point leaves both or neither (docs/design.md §3 "Crash
// consistency"). Other rows — refusals, free calls without a meter — go
// to the Recorder.
func (c *Call) End(ctx context.Context) platform.RequestLog {
	if c.ended {
		return c.Row
	}
	c.ended = true
	if c.stream.open {
		c.stream.Close()
	}
	row := &c.Row
	row.Usage = c.settlement.Usage
	row.Estimated = c.settlement.Estimated
	if c.backend != nil {
		row.Backend = c.backend()
	}
	row.LatencyMS = c.s.now().Sub(c.start).Milliseconds()
	recorded := c.settle(ctx, row)
	c.countEnded(row)
	if c.permit != nil {
		c.permit.Release(c.settlement.Usage)
	}
	if !recorded && c.s.opts.Log != nil {
		c.s.opts.Log.Record(*row)
	}
	return *row
}

// settle settles the reservation, if any, filling in the row's charge; it
// reports whether the meter stored the row with the usage row.
func (c *Call) settle(ctx context.Context, row *platform.RequestLog) (recorded bool) {
	if c.res == nil || c.s.nop {
		// Unmetered (--metering=false): the no-op reservation charges
		// nothing, so the settling context is not worth its allocations.
		return false
	}
	sctx := c.sctx.start(ctx)
	defer c.sctx.stop()
	var (
		charge platform.Charge
		err    error
	)
	if rr, ok := c.res.(platform.RecordingReservation); ok {
		if p, ok := c.s.opts.Log.(Preparer); ok {
			p.Prepare(row) // bounded before the meter keeps its copy
		}
		charge, recorded, err = rr.SettleRecord(sctx, c.settlement, *row)
	} else {
		charge, err = c.res.Settle(sctx, c.settlement)
	}
	if err != nil {
		c.s.log.Error("settle failed", "request_id", row.ID, "err", err)
	}
	row.Charge = charge
	return recorded
}

// flusher is a meter's reservation or a Recorder that can write what it
// was handed now (billing.Engine's usage rows, requestlog.Batcher's rows).
type flusher interface {
	Flush(ctx context.Context) error
}

// EndStored ends the call like End and returns once its usage row and its
// request-log row are stored. A caller that makes the call's result
// visible in the database right after — an async task storing its result
// — uses it, so a crash between the two can never show a finished task
// whose charge and row were still waiting in a batch (docs/design.md §3
// "Crash consistency"). The hot path of a sync request keeps End and its
// batches.
func (c *Call) EndStored(ctx context.Context) (platform.RequestLog, error) {
	row := c.End(ctx)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if f, ok := c.res.(flusher); ok {
		if err := f.Flush(fctx); err != nil {
			return row, err
		}
	}
	if f, ok := c.s.opts.Log.(flusher); ok {
		if err := f.Flush(fctx); err != nil {
			return row, err
		}
	}
	return row, nil
}
