package billing

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

// BenchmarkMeterInMemory is a metered request's work in memory, the flush
// left out: Meter.Reserve on leased credit, then SettleRecord with a
// request-log row shaped like glm serve's (the charge, its paid-by JSON,
// the usage record queued). Queued rows are dropped every 512 requests
// instead of written, so the figure is what metering costs a request
// before its rows reach the flush (BenchmarkMeteredFlush measures that).
// "cash" is an account paying in cash, "package" one paying from a
// resource package (glm serve's default account); "parallel" runs the
// same account from every P, as concurrent requests of one account do.
func BenchmarkMeterInMemory(b *testing.B) {
	for _, payer := range []string{"cash", "package"} {
		for _, par := range []bool{false, true} {
			name := payer
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) { benchMeterInMemory(b, payer, par) })
		}
	}
}

func benchMeterInMemory(b *testing.B, payer string, parallel bool) {
	ctx := context.Background()
	db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const acct = "acct_0123456789abcdef0123"
	st := NewStore(LedgerOn(db), nil)
	if _, err := st.TopUp(ctx, acct, 1_000_000_000*MicrosPerCNY, "bench"); err != nil {
		b.Fatal(err)
	}
	if payer == "package" {
		if _, err := st.GrantPackage(ctx, Grant{AccountID: acct, Name: "bench", Kind: "gift", Tokens: 1 << 50,
			ExpiresAt: time.Now().AddDate(1, 0, 0)}); err != nil {
			b.Fatal(err)
		}
	}
	// Manual: no flusher; the benchmark drops what would be written.
	e, err := NewEngine(ctx, LedgerOn(db), Config{Manual: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.abandon()
	m := Meter{Engine: e}
	one := func() {
		now := time.Now()
		id := platform.NewID(now)
		res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: acct, KeyID: "0123456789abcdef0123456789abcdef",
			Model: "glm-4", PromptTokens: 12, MaxTokens: 64, MinOutput: 8})
		if err != nil {
			b.Fatal(err)
		}
		row := platform.RequestLog{ID: id, RequestID: id, CreatedAt: now, AccountID: acct,
			KeyID: "0123456789abcdef0123456789abcdef", Model: "glm-4", Endpoint: platform.EndpointChat,
			HTTPStatus: 200, LatencyMS: 1, Backend: "zhipu",
			Usage: platform.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}}
		c, recorded, err := res.(platform.RecordingReservation).SettleRecord(ctx,
			platform.Settlement{Usage: row.Usage, Outcome: platform.OutcomeOK}, row)
		if err != nil || !recorded || c.Amount == 0 || c.PaidBy == "" {
			b.Fatalf("settle: got charge %+v, recorded %v, err %v; want a recorded charge", c, recorded, err)
		}
		e.pmu.Lock()
		if len(e.pending) >= 512 {
			clear(e.pending)
			e.pending = e.pending[:0]
		}
		e.pmu.Unlock()
	}
	one() // the first request takes the lease from the database
	b.ReportAllocs()
	cpu0 := benchcpu.Now(b)
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for range b.N {
			one()
		}
	}
	b.StopTimer()
	benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
}

// A metered request on leased credit allocates its reservation, the rows
// its settlement leaves for the flush and the paid-by JSON, and nothing
// else (docs/design.md §6): no wrapper, no map, no slice of holds or
// parts of its own.
func TestMeterReserveSettleAllocations(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "glm.db"))
	r.topup("acct", "1000")
	e := r.engine(Config{})
	m := Meter{Engine: e}
	ctx := context.Background()
	ids := make([]string, 400)
	for i := range ids {
		ids[i] = platform.NewID(time.Now())
	}
	n := 0
	one := func() {
		id := ids[n]
		n++
		res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: "acct", KeyID: "k", Model: "glm-4",
			PromptTokens: 12, MaxTokens: 64, MinOutput: 8})
		if err != nil {
			t.Fatal(err)
		}
		row := platform.RequestLog{ID: id, AccountID: "acct", KeyID: "k", Model: "glm-4", HTTPStatus: 200,
			Usage: platform.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}}
		c, recorded, err := res.(platform.RecordingReservation).SettleRecord(ctx, platform.Settlement{Usage: row.Usage, Outcome: platform.OutcomeOK}, row)
		if err != nil || !recorded || c.Amount == 0 {
			t.Fatalf("settle: got %+v, recorded %v, err %v; want a recorded charge", c, recorded, err)
		}
	}
	one() // the lease is taken from the database
	if got := testing.AllocsPerRun(200, one); got > 3 {
		t.Errorf("allocations per metered request: got %v, want ≤ 3 (reservation, settled rows, paid-by JSON)", got)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.usage("acct")); got != 202 {
		t.Errorf("usage rows: got %d, want 202 (one per request)", got)
	}
}
