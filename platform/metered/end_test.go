package metered

import (
	"context"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// recordingMeter keeps the rows its reservations store with their usage,
// as the billing meter does (platform.RecordingReservation).
type recordingMeter struct {
	closed  bool // the meter stores nothing (a closed engine)
	stored  []platform.RequestLog
	flushes int
}

type recordingRes struct{ m *recordingMeter }

func (m *recordingMeter) Reserve(context.Context, platform.ReserveRequest) (platform.Reservation, error) {
	return recordingRes{m}, nil
}

func (r recordingRes) Settle(context.Context, platform.Settlement) (platform.Charge, error) {
	panic("a recording reservation is settled with SettleRecord")
}

func (r recordingRes) SettleRecord(_ context.Context, _ platform.Settlement, row platform.RequestLog) (platform.Charge, bool, error) {
	if r.m.closed {
		return platform.Charge{}, false, nil
	}
	row.Charge = platform.Charge{Amount: 99}
	r.m.stored = append(r.m.stored, row)
	return row.Charge, true, nil
}

func (r recordingRes) Flush(context.Context) error { r.m.flushes++; return nil }

// preparingLog is a Recorder that is also shown the meter's rows.
type preparingLog struct {
	rows
	prepared []string
	flushes  int
}

func (p *preparingLog) Prepare(row *platform.RequestLog) {
	row.RequestID = "bounded" // what requestlog.Bound would do to an over-long id
	p.prepared = append(p.prepared, row.ID)
}

func (p *preparingLog) Flush(context.Context) error { p.flushes++; return nil }

// TestEndHandsTheRowToTheMeter: a charged call's row goes to the meter
// with the settlement (bounded by the Recorder first), not to the
// Recorder; EndStored waits for both writers (docs/design.md §3 "Crash
// consistency").
func TestEndHandsTheRowToTheMeter(t *testing.T) {
	be := &backend{reply: &zhipuai.ChatCompletion{Usage: zhipuai.Usage{PromptTokens: 4, CompletionTokens: 6}}}
	m, log := &recordingMeter{}, &preparingLog{}
	svc := New(Options{Backend: be, Catalogue: be, Meter: m, Log: log})
	var c Call
	svc.Begin(&c, "req-1", platform.EndpointChat, time.Now())
	c.Row.RequestID = "client-id"
	if _, _, err := c.Chat(context.Background(), chatReq(nil), 9); err != nil {
		t.Fatal(err)
	}
	row, err := c.EndStored(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.stored) != 1 || m.stored[0].ID != "req-1" || m.stored[0].Usage.TotalTokens != 10 || m.stored[0].RequestID != "bounded" {
		t.Fatalf("meter stored %+v; want the one row, with its usage, bounded", m.stored)
	}
	if len(log.rows.rows) != 0 || len(log.prepared) != 1 {
		t.Fatalf("recorder got %d rows and prepared %v; want none recorded, one prepared", len(log.rows.rows), log.prepared)
	}
	if row.Charge.Amount != 99 || m.flushes != 1 || log.flushes != 1 {
		t.Fatalf("row charge %d, meter flushes %d, recorder flushes %d; want 99, 1, 1", row.Charge.Amount, m.flushes, log.flushes)
	}
	if again := c.End(context.Background()); again.ID != "req-1" || len(m.stored) != 1 {
		t.Fatal("a second End stored the row again")
	}

	// A meter that stored nothing leaves the row to the Recorder.
	m.closed = true
	svc.Begin(&c, "req-2", platform.EndpointChat, time.Now())
	if _, _, err := c.Chat(context.Background(), chatReq(nil), 9); err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	if len(log.rows.rows) != 1 || log.rows.rows[0].ID != "req-2" || len(m.stored) != 1 {
		t.Fatalf("recorder rows %+v, meter rows %d; want req-2 recorded by the Recorder", log.rows.rows, len(m.stored))
	}
}
