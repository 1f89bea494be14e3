package console

import (
	"context"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// settleAfter is how long after a billing day ends its figures are taken
// as final: a request is logged with its start time when it ends, so a
// stream begun before midnight lands after it (bounded by the write and
// drain timeouts, far below this).
const settleAfter = time.Hour

// maxCachedDays bounds the cache (account-days); past it, it starts over.
const maxCachedDays = 100_000

// dayCache keeps the per-day figures of days that are over, per account:
// they no longer change (retention's roll-up keeps their totals), so a
// usage page reads the database only for the days still open — today,
// and yesterday during the first hour. Each replica has its own cache;
// being immutable, the days need no invalidation across replicas.
type dayCache struct {
	mu   sync.Mutex
	days map[string][]platform.RequestDay // account + "/" + day → rows
}

func newDayCache() *dayCache { return &dayCache{days: map[string][]platform.RequestDay{}} }

type dayStore interface {
	RequestDays(ctx context.Context, accountID, from, to string) ([]platform.RequestDay, error)
}

// get returns the rows of n days from first (a midnight in the billing
// zone) for account.
func (c *dayCache) get(ctx context.Context, st dayStore, account string, first time.Time, n int, now time.Time) ([]platform.RequestDay, error) {
	var out []platform.RequestDay
	open := n // index of the first day not served from the cache
	c.mu.Lock()
	for i := 0; i < n; i++ {
		day := first.AddDate(0, 0, i)
		rows, ok := c.days[account+"/"+day.Format(time.DateOnly)]
		if !ok {
			open = i
			break
		}
		out = append(out, rows...)
	}
	c.mu.Unlock()
	if open == n {
		return out, nil
	}
	from := first.AddDate(0, 0, open)
	to := first.AddDate(0, 0, n)
	fresh, err := st.RequestDays(ctx, account, from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	byDay := map[string][]platform.RequestDay{}
	for _, r := range fresh {
		byDay[r.Day] = append(byDay[r.Day], r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.days) > maxCachedDays {
		c.days = map[string][]platform.RequestDay{}
	}
	for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
		if now.Before(day.AddDate(0, 0, 1).Add(settleAfter)) {
			break
		}
		key := day.In(billing.BillingZone).Format(time.DateOnly)
		rows := byDay[key]
		if rows == nil {
			rows = []platform.RequestDay{}
		}
		c.days[account+"/"+key] = rows
	}
	return append(out, fresh...), nil
}
