package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Usage rows and the parts that paid for them.

const (
	usageCols = 29 // columns of a billing_usage row as inserted (one part's included)
	partCols  = 6  // columns of a billing_usage_parts row
	// usageChunk and partChunk bound the rows of one INSERT, keeping its
	// bound parameters well under either engine's limit; powers of two,
	// so a batch is cut into few distinct texts (stmts.go).
	usageChunk = 128
	partChunk  = 128
)

// InsertUsage implements billing.LedgerTx. ON CONFLICT DO NOTHING skips a
// request id already stored; RETURNING names the rows that were new. A
// chunk whose ids are all new is stored without either where the engine
// allows (store.DB.BatchInsertAll).
func (t *txn) InsertUsage(ctx context.Context, recs []*billing.UsageRecord) ([]string, error) {
	var inserted []string
	for i := 0; i < len(recs); {
		part := recs[i : i+chunkRows(len(recs)-i, usageChunk)]
		i += len(part)
		tail := store.LeanTail(len(part), func(j int) int { return usageZeros(part[j]) }, usageTails)
		bound := usageCols - tail.Len()
		// Room for the last row's whole append (appendUsageArgs).
		args := make([]any, 0, len(part)*bound+tail.Len())
		for _, r := range part {
			args = appendUsageArgs(args, r, bound)
		}
		insert := `INSERT INTO billing_usage (` + usageInsertColumns + `) VALUES ` + t.dialect.ValuesTail(len(part), bound, tail)
		// The common case, every request id new, needs no RETURNING
		// (store.DB.BatchInsertAll).
		all, err := t.h.BatchInsertAll(ctx, t.tx, insert, args)
		if err != nil {
			return nil, fmt.Errorf("billing: insert usage: %w", err)
		}
		var ids []string
		if all {
			ids = make([]string, len(part))
			for j, r := range part {
				ids[j] = r.RequestID
			}
		} else if ids, err = t.insertReturning(ctx, insert+` ON CONFLICT (request_id) DO NOTHING RETURNING request_id`, args); err != nil {
			return nil, err
		}
		inserted = append(inserted, ids...)
		// The rows stored with their one part: InsertUsageParts must
		// not store that part again.
		if t.inline == nil {
			t.inline = make(map[string]bool, len(ids))
		}
		var stored map[string]bool // nil: every row of part was stored
		if !all {
			stored = make(map[string]bool, len(ids))
			for _, id := range ids {
				stored[id] = true
			}
		}
		for _, r := range part {
			if _, one := r.OnePart(); one && (all || stored[r.RequestID]) {
				t.inline[r.RequestID] = true
			}
		}
	}
	return inserted, nil
}

// usageInsertColumns are a usage row's columns as InsertUsage writes
// them: the columns a row usually leaves at zero come last — the package
// tokens (a row paid in cash has none), then images, a discount, a
// shortfall, an estimate, cached and reasoning tokens, tool calls, the
// per-call and image prices — so a chunk whose rows all leave them at
// zero writes them as literals (usageTails, store.LeanTail).
const usageInsertColumns = `request_id, account_id, key_id, model, prompt_tokens, completion_tokens, amount_micros,
	cash_micros, outcome, reserved_at, created_at, price_class, price_input_micros, price_cached_micros,
	price_output_micros, part_source, part_lease_id, part_micros, package_tokens, part_tokens, images, discount_micros,
	shortfall_micros, estimated, cached_tokens, reasoning_tokens, calls, price_call_micros, price_image_micros`

// usageTails are the literal tails a usage chunk may be written with,
// longest first: paid in cash, or by a package, with no rare column set.
var usageTails = []*store.Tail{
	store.NewTail("0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0"),
	store.NewTail("0", "0", "0", "0", "0", "0", "0", "0", "0"),
}

// usageZeros is how many of r's last columns (usageInsertColumns) are at
// zero, as far as the tails go: 11, 9 or none.
func usageZeros(r *billing.UsageRecord) int {
	if r.Images != 0 || r.Discount != 0 || r.Shortfall != 0 || r.Estimated || r.CachedTokens != 0 ||
		r.ReasoningTokens != 0 || r.Calls != 0 || r.Rate.PerCall != 0 || r.Rate.Image != 0 {
		return 0
	}
	if one, _ := r.OnePart(); r.PackageTokens != 0 || one.Tokens != 0 {
		return 9
	}
	return 11
}

// appendUsageArgs appends the first bound of r's columns
// (usageInsertColumns); args needs room for all of them.
func appendUsageArgs(args []any, r *billing.UsageRecord, bound int) []any {
	est := int64(0)
	if r.Estimated {
		est = 1
	}
	one, _ := r.OnePart() // zero (source "") when the parts are parts rows
	n := len(args)
	args = append(args, r.RequestID, r.AccountID, r.KeyID, r.Model, r.PromptTokens, r.CompletionTokens,
		int64(r.Amount), int64(r.Cash), r.Outcome, ms(r.ReservedAt), ms(r.CreatedAt), r.Class,
		int64(r.Rate.Input), int64(r.Rate.Cached()), int64(r.Rate.Output), one.Source, one.LeaseID, int64(one.Micros),
		r.PackageTokens, one.Tokens, r.Images, int64(r.Discount), int64(r.Shortfall), est, r.CachedTokens,
		r.ReasoningTokens, r.Calls, int64(r.Rate.PerCall), int64(r.Rate.Image))
	return args[:n+bound]
}

func (t *txn) insertReturning(ctx context.Context, q string, args []any) ([]string, error) {
	rows, err := t.batchQuery(ctx, q, args)
	if err != nil {
		return nil, fmt.Errorf("billing: insert usage: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("billing: insert usage: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: insert usage: %w", err)
	}
	return ids, nil
}

// InsertUsageParts implements billing.LedgerTx. A part of a row
// InsertUsage stored with its one part is that part: skipped.
func (t *txn) InsertUsageParts(ctx context.Context, parts []billing.UsagePart) error {
	if len(t.inline) > 0 {
		rest := make([]billing.UsagePart, 0, len(parts))
		for _, p := range parts {
			if !t.inline[p.RequestID] {
				rest = append(rest, p)
			}
		}
		parts = rest
	}
	for i := 0; i < len(parts); {
		chunk := parts[i : i+chunkRows(len(parts)-i, partChunk)]
		i += len(chunk)
		args := make([]any, 0, len(chunk)*partCols)
		for _, p := range chunk {
			args = append(args, p.RequestID, p.Seq, p.Source, p.LeaseID, p.Tokens, int64(p.Micros))
		}
		q := `INSERT INTO billing_usage_parts (request_id, seq, source, lease_id, tokens, micros) VALUES ` + t.dialect.Values(len(chunk), partCols)
		if err := t.batchExec(ctx, q, args); err != nil {
			return fmt.Errorf("billing: insert usage parts: %w", err)
		}
	}
	return nil
}

// InsertRequestLogs implements billing.LedgerTx: the request-log rows of
// a usage batch, in its transaction; each replaces a row its id already
// has, so the row's charge is the usage row's.
func (t *txn) InsertRequestLogs(ctx context.Context, rows []platform.RequestLog) error {
	return store.InsertRequestLogsTx(ctx, t.h, t.tx, rows, true)
}

// Usage implements billing.Ledger.
func (l *DB) Usage(ctx context.Context, f billing.UsageFilter) ([]billing.UsageRecord, error) {
	out, err := usageRows(ctx, l.db.SQL, f)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(out))
	for i, r := range out {
		idx[r.RequestID] = i
	}
	if !f.WithParts || len(out) == 0 {
		return out, nil
	}
	// Parts rows, and the one parts stored with their rows (migration
	// 0014); a row has one or the other, never both.
	pq := `SELECT p.request_id, p.seq, p.source, p.lease_id, p.tokens, p.micros FROM billing_usage_parts p JOIN billing_usage u ON u.request_id = p.request_id WHERE 1 = 1`
	oq := ` UNION ALL SELECT request_id, 0, ` + onePartColumns + ` FROM billing_usage WHERE part_source <> ''`
	var pargs []any
	if f.AccountID != "" {
		a := store.Arg(&pargs, f.AccountID)
		pq += ` AND u.account_id = ` + a
		oq += ` AND account_id = ` + a
	}
	pq += oq + ` ORDER BY 1, 2`
	prow, err := l.db.SQL.QueryContext(ctx, pq, pargs...)
	if err != nil {
		return nil, fmt.Errorf("billing: usage parts: %w", err)
	}
	defer prow.Close()
	for prow.Next() {
		var id string
		var seq int
		var p billing.Part
		var m int64
		if err := prow.Scan(&id, &seq, &p.Source, &p.LeaseID, &p.Tokens, &m); err != nil {
			return nil, fmt.Errorf("billing: usage parts: %w", err)
		}
		p.Micros = billing.Micros(m)
		if i, ok := idx[id]; ok {
			out[i].Parts = append(out[i].Parts, p)
		}
	}
	return out, prow.Err()
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// usageRows lists the usage rows f selects, without parts.
func usageRows(ctx context.Context, db querier, f billing.UsageFilter) ([]billing.UsageRecord, error) {
	q := `SELECT ` + usageColumns + ` FROM billing_usage WHERE 1 = 1`
	var args []any
	if f.AccountID != "" {
		q += ` AND account_id = ` + store.Arg(&args, f.AccountID)
	}
	if f.Model != "" {
		q += ` AND model = ` + store.Arg(&args, f.Model)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ` + store.Arg(&args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND created_at < ` + store.Arg(&args, ms(f.Until))
	}
	if f.Newest && f.Limit > 0 {
		q += ` ORDER BY created_at DESC, request_id DESC`
	} else {
		q += ` ORDER BY created_at, request_id`
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: list usage: %w", err)
	}
	defer rows.Close()
	var out []billing.UsageRecord
	for rows.Next() {
		r, err := scanUsage(rows)
		if err != nil {
			return nil, fmt.Errorf("billing: list usage: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: list usage: %w", err)
	}
	if f.Newest && f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// onePartColumns hold a row's part when it has exactly one
// (billing.UsageRecord.OnePart; migration 0014): part_source is ” when
// the row's parts are billing_usage_parts rows.
const onePartColumns = `part_source, part_lease_id, part_tokens, part_micros`

// usageColumns are the columns scanUsage reads, in its order.
const usageColumns = `request_id, account_id, key_id, model, prompt_tokens, completion_tokens, images, package_tokens, amount_micros, discount_micros, cash_micros, shortfall_micros, outcome, estimated, reserved_at, created_at, cached_tokens, reasoning_tokens, calls, price_class, price_input_micros, price_cached_micros, price_output_micros, price_call_micros, price_image_micros`

func scanUsage(rows *sql.Rows) (billing.UsageRecord, error) {
	var r billing.UsageRecord
	var amount, disc, cash, short int64
	var est int
	var ra, ca int64
	var class string
	var pi, pci, po, pc, pim int64
	if err := rows.Scan(&r.RequestID, &r.AccountID, &r.KeyID, &r.Model, &r.PromptTokens, &r.CompletionTokens, &r.Images,
		&r.PackageTokens, &amount, &disc, &cash, &short, &r.Outcome, &est, &ra, &ca,
		&r.CachedTokens, &r.ReasoningTokens, &r.Calls, &class, &pi, &pci, &po, &pc, &pim); err != nil {
		return billing.UsageRecord{}, err
	}
	r.Class = class
	r.Rate = billing.Price{Model: r.Model, Input: billing.Micros(pi), CachedInput: billing.Micros(pci), Output: billing.Micros(po),
		PerCall: billing.Micros(pc), Image: billing.Micros(pim)}
	r.Amount, r.Discount, r.Cash, r.Shortfall = billing.Micros(amount), billing.Micros(disc), billing.Micros(cash), billing.Micros(short)
	r.Estimated = est != 0
	r.ReservedAt, r.CreatedAt = fromMS(ra), fromMS(ca)
	return r, nil
}
