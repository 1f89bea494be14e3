package platform

import "time"

// RequestDay is one billing day's requests of one key and model, from the
// request log's per-day roll-up: what the console's usage charts draw
// (docs/console.md §5).
type RequestDay struct {
	Day      string // YYYY-MM-DD in the billing zone (UTC+8)
	KeyID    string
	Model    string
	Requests int64
	Tokens   int64 // prompt + completion
	Charge   int64 // micros
}

// RecentRequests selects one page of an account's request log, newest
// first in (created_at, id) order: the console's recent-requests table.
type RecentRequests struct {
	AccountID string
	Model     string // "" = every model
	KeyID     string // "" = every key
	// BeforeAt and BeforeID are the cursor, the last row of the page
	// before: only rows older in (created_at, id) order come, so rows
	// sharing the boundary millisecond are neither skipped nor repeated.
	// A zero BeforeAt asks for the newest page.
	BeforeAt time.Time
	BeforeID string
	Limit    int
}
