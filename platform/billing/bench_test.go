package billing

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

// BenchmarkReserveSettle measures metered requests per second in process
// on SQLite (target ≥ 5,000/s on a 2-core machine, so metering is never
// the bottleneck of a small deployment), next to the hot path's no-op
// meter. The timed part includes writing every usage row to the database
// (the final Flush), so the figure is what the database sustains, not just
// the in-memory part.
func BenchmarkReserveSettle(b *testing.B) {
	ctx := context.Background()
	b.Run("noop", func(b *testing.B) {
		var m platform.Meter = platform.NopMeter{}
		var n atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := strconv.FormatInt(n.Add(1), 10)
				res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: "acct", Model: "glm-4", PromptTokens: 200, MaxTokens: 800})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := res.Settle(ctx, platform.Settlement{Usage: platform.Usage{PromptTokens: 200, CompletionTokens: 300}, Outcome: platform.OutcomeOK}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	for _, accounts := range []int{1, 64} {
		b.Run("sqlite/accounts="+strconv.Itoa(accounts), func(b *testing.B) {
			db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			st := NewStore(LedgerOn(db), nil)
			for a := 0; a < accounts; a++ {
				acct := "acct" + strconv.Itoa(a)
				if _, err := st.TopUp(ctx, acct, 1_000_000*MicrosPerCNY, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			e, err := NewEngine(ctx, LedgerOn(db), Config{})
			if err != nil {
				b.Fatal(err)
			}
			m := Meter{Engine: e}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					id := strconv.FormatInt(i, 10)
					acct := "acct" + strconv.Itoa(int(i)%accounts)
					res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: acct, Model: "glm-4", PromptTokens: 200, MaxTokens: 800})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := res.Settle(ctx, platform.Settlement{Usage: platform.Usage{PromptTokens: 200, CompletionTokens: 300}, Outcome: platform.OutcomeOK}); err != nil {
						b.Fatal(err)
					}
				}
			})
			if err := e.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.StopTimer()
			if err := e.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkMeteredFlush is metering's database work as glm serve does it
// at sync c16 (~4,500 req/s): each request reserves, settles with its
// request-log row (server-shaped ids, a key id, a backend, the paid-by
// JSON), and every 450 requests — one 100 ms flush at that rate — the
// engine writes the batch: usage rows, parts, lease totals and
// request-log rows with their days in one transaction. "grown" first
// writes 100,000 requests (untimed), so the B-trees are as deep as after
// a few minutes of load, not empty. "unmetered-…" writes the same
// request-log rows alone, as --metering=false does. cpu-µs/op is the
// process's CPU per request, flusher included: metered minus unmetered is
// the figure to compare with glm serve's metered minus unmetered CPU per
// request.
func BenchmarkMeteredFlush(b *testing.B) {
	for _, c := range []struct {
		name    string
		grown   int
		metered bool
	}{{"empty", 0, true}, {"grown", 100_000, true}, {"unmetered-empty", 0, false}, {"unmetered-grown", 100_000, false}} {
		b.Run(c.name, func(b *testing.B) { benchFlush(b, c.grown, c.metered) })
	}
}

// benchFlush is one case of BenchmarkMeteredFlush. Unmetered, the same
// request-log rows are written as the request-log batcher writes them
// (store.InsertRequestLogsTx, one transaction per 450), with no
// reservation, usage row or lease: metered minus unmetered is what
// metering costs a request.
func benchFlush(b *testing.B, grown int, metered bool) {
	ctx := context.Background()
	db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const acct = "acct_0123456789abcdef0123"
	if _, err := NewStore(LedgerOn(db), nil).TopUp(ctx, acct, 1_000_000_000*MicrosPerCNY, "bench"); err != nil {
		b.Fatal(err)
	}
	// A long interval: only the benchmark flushes.
	e, err := NewEngine(ctx, LedgerOn(db), Config{FlushInterval: time.Hour, FlushBatch: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	m := Meter{Engine: e}
	const perFlush = 450
	var logs []platform.RequestLog // unmetered: the rows waiting for their batch
	flush := func() {
		if metered {
			if err := e.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			return
		}
		err := db.Tx(ctx, func(tx *sql.Tx) error { return store.InsertRequestLogsTx(ctx, db, tx, logs, false) })
		if err != nil {
			b.Fatal(err)
		}
		logs = logs[:0]
	}
	one := func(i int) {
		now := time.Now()
		id := platform.NewID(now)
		row := platform.RequestLog{ID: id, RequestID: platform.NewID(now), CreatedAt: now, AccountID: acct,
			KeyID: "0123456789abcdef0123456789abcdef", Model: "glm-4", Endpoint: platform.EndpointChat,
			HTTPStatus: 200, LatencyMS: 1, Backend: "zhipu",
			Usage: platform.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}}
		if metered {
			res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: acct, KeyID: row.KeyID,
				Model: "glm-4", PromptTokens: 12, MaxTokens: 64})
			if err != nil {
				b.Fatal(err)
			}
			_, recorded, err := res.(platform.RecordingReservation).SettleRecord(ctx,
				platform.Settlement{Usage: row.Usage, Outcome: platform.OutcomeOK}, row)
			if err != nil || !recorded {
				b.Fatalf("settle: recorded %v, err %v", recorded, err)
			}
		} else {
			logs = append(logs, row)
		}
		if (i+1)%perFlush == 0 {
			flush()
		}
	}
	for i := range grown {
		one(i)
	}
	flush()
	b.ReportAllocs()
	cpu0, io0 := benchcpu.Now(b), processIO()
	b.ResetTimer()
	for i := range b.N {
		one(i)
	}
	flush()
	b.StopTimer()
	benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
	// Write calls and bytes (the WAL's frames, checkpoints) per
	// request: counts a loaded machine does not move.
	if io1 := processIO(); io0 != nil && io1 != nil {
		b.ReportMetric(float64(io1["syscw"]-io0["syscw"])/float64(b.N), "writes/op")
		b.ReportMetric(float64(io1["wchar"]-io0["wchar"])/float64(b.N), "written-B/op")
	}
}

// processIO is this process's I/O counters (/proc/self/io: syscw, wchar,
// …), or nil where there is no such file.
func processIO() map[string]int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}
