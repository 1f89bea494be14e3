package platform

import (
	"context"
	"time"
)

// AccountStore keeps accounts.
type AccountStore interface {
	CreateAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, id string) (Account, error)
	// ListAccounts returns all accounts, oldest first.
	ListAccounts(ctx context.Context) ([]Account, error)
}

// KeyStore keeps API keys; secrets are encrypted at rest by the store.
type KeyStore interface {
	CreateKey(ctx context.Context, k Key) error
	// GetKey returns the key with its decrypted secret, or ErrNotFound.
	GetKey(ctx context.Context, id string) (Key, error)
	// ListKeys returns keys without secrets, oldest first; accountID ""
	// lists every account's keys.
	ListKeys(ctx context.Context, accountID string) ([]Key, error)
	// RevokeKey marks a key revoked (ErrNotFound if there is none); revoking
	// twice keeps the first time.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// TouchKeys sets last-used times; a time earlier than the stored one is
	// ignored, so batches may arrive in any order.
	TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error
}

// TaskStore keeps async tasks as durable rows (docs/design.md §3).
type TaskStore interface {
	CreateTask(ctx context.Context, t Task) error
	// GetTask returns the task only when it belongs to accountID; another
	// account's task is ErrNotFound, exactly like an unknown id.
	GetTask(ctx context.Context, accountID, id string) (Task, error)
	// ClaimTasks moves up to n queued tasks, oldest first, to running under
	// worker with a lease until leaseUntil, atomically: two workers (or two
	// replicas) never claim the same task.
	ClaimTasks(ctx context.Context, worker string, n int, now, leaseUntil time.Time) ([]Task, error)
	// RenewLease extends the lease of a task the worker still holds; it
	// reports false when the claim was lost.
	RenewLease(ctx context.Context, id, worker string, leaseUntil time.Time) (bool, error)
	// FinishTask records the outcome of a task the worker holds: State
	// TaskSucceeded with Result, or TaskFailed with ErrorCode/ErrorMessage.
	// It reports false (and changes nothing) when the claim was lost.
	FinishTask(ctx context.Context, id, worker string, t Task) (bool, error)
	// FailExpiredTasks fails running tasks whose lease ran out before now
	// (their worker died): they are not re-run, since the upstream may
	// already have answered (and charged) once.
	FailExpiredTasks(ctx context.Context, now time.Time, code, message string) (int, error)
	// ReleaseTasks fails the running tasks held by worker (shutdown after
	// the drain timeout).
	ReleaseTasks(ctx context.Context, worker string, now time.Time, code, message string) (int, error)
	// PurgeTasks deletes finished tasks that finished before the cut-off.
	PurgeTasks(ctx context.Context, finishedBefore time.Time) (int, error)
}

// RequestLogFilter selects request-log rows.
type RequestLogFilter struct {
	AccountID string
	Since     time.Time
	Limit     int // 0 = no limit
}

// RequestLogStore keeps the request log.
type RequestLogStore interface {
	// InsertRequestLogs writes rows in one transaction; rows whose ID is
	// already stored are skipped, so a retried batch records nothing twice.
	InsertRequestLogs(ctx context.Context, rows []RequestLog) error
	// ListRequestLogs returns rows oldest first.
	ListRequestLogs(ctx context.Context, f RequestLogFilter) ([]RequestLog, error)
}

// Store is the platform's persistent state. The SQL implementation in
// platform/store runs on SQLite and PostgreSQL.
type Store interface {
	AccountStore
	KeyStore
	TaskStore
	RequestLogStore
	Close() error
}
