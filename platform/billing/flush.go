package billing

import (
	"context"
	"sort"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Flush writes the usage rows waiting when it is called. Rows are written
// in batches, one transaction each, together with the spent totals of the
// leases that paid for them, so a lease's spent total in the database is
// always the sum of its usage rows. A row whose request id is already
// stored is skipped and its credit stays with the lease (returned to the
// pool when the lease closes): a request is charged exactly once. Rows
// that arrive while it writes wait for the writer's next interval: a busy
// server writes what gathered in one transaction, rather than chasing the
// last few rows in ever smaller ones, each paying a commit (docs/design.md
// §6, what metering writes per request).
func (e *Engine) Flush(ctx context.Context) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	// Only this goroutine removes rows (flushMu), and rows are only
	// appended, so the first left rows stay the ones waiting now.
	for left := e.pendingLen(); left > 0; {
		n := min(left, e.cfg.FlushBatch)
		left -= n
		e.pmu.Lock()
		batch := make([]*UsageRecord, n)
		copy(batch, e.pending[:n])
		e.pmu.Unlock()
		start := time.Now()
		if err := writeUsage(ctx, e.db, batch, e.cfg.Now()); err != nil {
			return err
		}
		took := time.Since(start)
		e.pmu.Lock()
		// The batch is still the prefix (above).
		rest := copy(e.pending, e.pending[n:])
		for i := rest; i < len(e.pending); i++ {
			e.pending[i] = nil
		}
		e.pending = e.pending[:rest]
		e.pmu.Unlock()
		e.cfg.Metrics.flushed(n, took, rest)
	}
	return nil
}

// writeUsage writes a batch of usage rows in one transaction, with the
// parts of the rows that were new and the spent totals of the leases that
// paid for them, in lease id order (the order every transaction locks
// leases in).
func writeUsage(ctx context.Context, db Ledger, recs []*UsageRecord, now time.Time) error {
	return db.Tx(ctx, func(tx LedgerTx) error {
		ids, err := tx.InsertUsage(ctx, recs)
		if err != nil {
			return err
		}
		inserted := make(map[string]bool, len(ids))
		for _, id := range ids {
			inserted[id] = true
		}
		// Parts, lease totals and request-log rows, for inserted rows only.
		spent := map[string]int64{}
		// Most rows have one part and one log row: sized once, not grown.
		// (The ledger stores a row's only part with the row: OnePart.)
		parts := make([]UsagePart, 0, len(recs))
		logs := make([]platform.RequestLog, 0, len(recs))
		for _, r := range recs {
			if !inserted[r.RequestID] {
				continue
			}
			inserted[r.RequestID] = false // a duplicate inside one batch counts once
			if r.log != nil {
				logs = append(logs, *r.log)
			}
			for seq, p := range r.Parts {
				parts = append(parts, UsagePart{RequestID: r.RequestID, Seq: seq, Part: p})
				if p.Source == PartCash {
					spent[p.LeaseID] += int64(p.Micros)
				} else {
					spent[p.LeaseID] += p.Tokens
				}
			}
		}
		if err := tx.InsertUsageParts(ctx, parts); err != nil {
			return err
		}
		// The rows' request-log rows in the same transaction: a crash
		// leaves both or neither (docs/design.md §3 "Crash consistency").
		if err := tx.InsertRequestLogs(ctx, logs); err != nil {
			return err
		}
		leases := make([]string, 0, len(spent))
		for id := range spent {
			leases = append(leases, id)
		}
		sort.Strings(leases)
		for _, id := range leases {
			ok, err := tx.AddLeaseSpent(ctx, id, spent[id])
			if err != nil {
				return err
			}
			if !ok {
				if err := orphanDebit(ctx, tx, id, spent[id], now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// orphanDebit charges usage against a lease that was already closed — its
// holder lost the database for longer than LeaseTTL, another process
// reconciled the lease and returned its credit, and then the holder's
// usage rows arrived. The amount is taken from the source directly, up to
// what the source has (never negative); what it cannot cover is recorded
// as the lease's uncollected amount for the operator.
func orphanDebit(ctx context.Context, tx LedgerTx, leaseID string, amount int64, now time.Time) error {
	acct, src, err := tx.LeaseSource(ctx, leaseID)
	if err != nil {
		return err
	}
	cash := src == cashSource(acct)
	var have int64
	if cash {
		have, err = tx.LockWallet(ctx, acct)
	} else {
		have, err = tx.LockPackageTokens(ctx, src)
	}
	if err != nil {
		return err
	}
	take := min(have, amount)
	if take > 0 {
		// The source is locked and holds at least take, so the guarded
		// take cannot fall short.
		if cash {
			err = tx.TakeCash(ctx, acct, take, now)
		} else {
			err = tx.TakePackageTokens(ctx, src, take)
		}
		if err != nil {
			return err
		}
	}
	return tx.ChargeOrphan(ctx, leaseID, amount, amount-take)
}

// UsageFilter selects usage rows.
type UsageFilter struct {
	AccountID string
	Model     string
	Since     time.Time // inclusive
	Until     time.Time // exclusive; zero = no bound
	Limit     int       // 0 = all
	// Newest makes Limit keep the newest rows instead of the oldest (the
	// rows still come oldest first).
	Newest bool
	// WithParts loads each row's parts.
	WithParts bool
}

// ListUsage returns usage rows, oldest first.
func (s *Store) ListUsage(ctx context.Context, f UsageFilter) ([]UsageRecord, error) {
	return s.db.Usage(ctx, f)
}
