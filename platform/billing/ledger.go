package billing

import (
	"context"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Ledger is the storage billing keeps its money in. Billing decides who
// pays and how much; the Ledger only stores and reads rows, so the money
// rules live in one place whatever database holds them (the platform's
// implementation is platform/store/ledger).
//
// Times are stored to the millisecond; a time read back is in UTC.
type Ledger interface {
	// Tx runs fn in one transaction and commits when fn returns nil. On a
	// transient conflict the whole transaction runs again, so fn must not
	// keep state from a failed attempt. Each LedgerTx method locks only
	// the rows it names, so the lock order is billing's: a money
	// transaction locks the account's wallet row first and leases in id
	// order, which keeps concurrent transactions from deadlocking.
	Tx(ctx context.Context, fn func(LedgerTx) error) error

	// Cash is the account's unleased cash (0 without a wallet).
	Cash(ctx context.Context, account string) (int64, error)
	// Outstanding returns, per lease source, what active leases hold and
	// have not spent (granted − spent); account "" covers every account.
	Outstanding(ctx context.Context, account string) (map[string]int64, error)
	// LeasedElsewhere returns, per lease source, what the account's active
	// leases of holders other than holder hold and have not spent.
	LeasedElsewhere(ctx context.Context, account, holder string) (map[string]int64, error)
	// Packages lists packages ordered by account, expiry and id, with
	// Unleased set from the stored remainder and TokensRemaining left 0;
	// account "" lists every account's.
	Packages(ctx context.Context, account string) ([]Package, error)
	// ExpiredLeases lists active leases whose expiry is at or before t,
	// ordered by account and id, with AccountID and ID set.
	ExpiredLeases(ctx context.Context, t time.Time) ([]LeaseRow, error)
	// Usage lists usage rows, oldest first (ties by request id), with
	// their parts when f.WithParts.
	Usage(ctx context.Context, f UsageFilter) ([]UsageRecord, error)
	// UsageWithDays reads, from one consistent snapshot, the usage rows f
	// selects (without parts) and the day roll-ups of f's account and model
	// on the days of r, so that no roll-up committing in between is missed
	// or counted twice.
	UsageWithDays(ctx context.Context, f UsageFilter, r DayRange) ([]UsageRecord, []UsageDay, error)
	// Snapshot reads every table the audit checks from one consistent
	// snapshot, for one account or every account ("").
	Snapshot(ctx context.Context, account string) (*LedgerSnapshot, error)

	// AuditLog lists the operator's audit log, newest first, of one
	// account (every account: ""), at most limit rows (all: 0).
	AuditLog(ctx context.Context, account string, limit int) ([]AuditEntry, error)

	// Prices is the price table, by model.
	Prices(ctx context.Context) ([]Price, error)
	// PutPrice creates or replaces a model's price.
	PutPrice(ctx context.Context, p Price, now time.Time) error

	// Limit is the rule of (subject, id); found=false when there is none.
	Limit(ctx context.Context, subject, id string) (r LimitRule, found bool, err error)
	// Limits lists every rule ordered by subject and id.
	Limits(ctx context.Context) ([]LimitRule, error)
	// DeleteLimit removes the rule of (subject, id); found=false when
	// there was none.
	DeleteLimit(ctx context.Context, subject, id string) (found bool, err error)
}

// LedgerTx is one transaction on the Ledger. Each method is one statement
// (or, for the batch writes, one statement per chunk of rows); the order
// they run in is billing's.
type LedgerTx interface {
	// InsertRequestLogs stores request-log rows, replacing rows of the
	// same id: the flush writes a usage row's request-log row with it, and
	// that row is the one that holds the charge.
	InsertRequestLogs(ctx context.Context, rows []platform.RequestLog) error

	// EnsureWallet creates the account's wallet (cash 0) if missing.
	EnsureWallet(ctx context.Context, account string, now time.Time) error
	// LockWallet locks the account's wallet row and returns its cash (0,
	// and nothing locked, without a row).
	LockWallet(ctx context.Context, account string) (cash int64, err error)
	// AddCash adds amount to the account's wallet, creating it if missing.
	AddCash(ctx context.Context, account string, amount int64, now time.Time) error
	// TakeCash takes n from the wallet, never more than it holds: fewer
	// is a conflict that runs the transaction again.
	TakeCash(ctx context.Context, account string, n int64, now time.Time) error
	// ReturnCash gives n back to the wallet.
	ReturnCash(ctx context.Context, account string, n int64) error

	// InsertPackage stores p with its Unleased = TokensGranted. With once,
	// a package already stored under p.ID is left alone and inserted is
	// false; without, that is an error.
	InsertPackage(ctx context.Context, p Package, now time.Time, once bool) (inserted bool, err error)
	// EligiblePackages locks and returns the account's packages with
	// tokens left that are active at t, earliest expiry first (ties by
	// id), with ID, AccountID, Models, Unleased, EffectiveAt and ExpiresAt
	// set. The model scope is billing's to check.
	EligiblePackages(ctx context.Context, account string, t time.Time) ([]Package, error)
	// LockPackageTokens locks a package and returns its unleased tokens
	// (0 when it does not exist).
	LockPackageTokens(ctx context.Context, id string) (int64, error)
	// TakePackageTokens takes n tokens from a package, never more than it
	// holds: fewer is a conflict that runs the transaction again.
	TakePackageTokens(ctx context.Context, id string, n int64) error
	// ReturnPackageTokens gives n tokens back to a package.
	ReturnPackageTokens(ctx context.Context, id string, n int64) error

	// LockPackage locks a package and returns it with ID, AccountID,
	// Name, Models, TokensGranted, Unleased, EffectiveAt and ExpiresAt set;
	// found=false when missing.
	LockPackage(ctx context.Context, id string) (p Package, found bool, err error)
	// AdjustPackage adds delta to a package's granted and unleased tokens
	// together, never leaving unleased below 0 (fewer is a conflict), and
	// with a non-zero expires moves its expiry there.
	AdjustPackage(ctx context.Context, id string, delta int64, expires time.Time) error
	// DeletePrice removes a model's price row and returns it; found=false
	// when there was none.
	DeletePrice(ctx context.Context, model string) (p Price, found bool, err error)
	// ReplacePrice stores p as its model's price row and returns the row it
	// replaced; found=false when there was none.
	ReplacePrice(ctx context.Context, p Price, now time.Time) (before Price, found bool, err error)
	// InsertAudit records one entry of the operator's audit log.
	InsertAudit(ctx context.Context, e AuditEntry) error

	// InsertCredit records a top-up or grant.
	InsertCredit(ctx context.Context, c Credit) error

	// InsertLease stores a new active lease (spent, uncollected and
	// returned 0).
	InsertLease(ctx context.Context, l LeaseRow) error
	// LockLease locks a lease and returns it; found=false when missing.
	LockLease(ctx context.Context, id string) (l LeaseRow, found bool, err error)
	// LeaseSource returns a lease's account and source, unlocked.
	LeaseSource(ctx context.Context, id string) (account, source string, err error)
	// CloseLease marks a lease closed, having returned `returned`.
	CloseLease(ctx context.Context, id string, returned int64, note string, now time.Time) error
	// LockHolderLeases locks the holder's active leases in id order and
	// returns their ids.
	LockHolderLeases(ctx context.Context, holder string) ([]string, error)
	// ExtendLeases moves the expiry of the given leases, those still
	// active, to until.
	ExtendLeases(ctx context.Context, ids []string, until time.Time) error
	// PackageExpiries returns the expiry of each of the packages ids that
	// exists, unlocked.
	PackageExpiries(ctx context.Context, ids []string) (map[string]time.Time, error)
	// AddLeaseSpent adds n to an active lease's spent total; ok=false when
	// the lease is not active (nothing changed).
	AddLeaseSpent(ctx context.Context, id string, n int64) (ok bool, err error)
	// ChargeOrphan adds spent and uncollected to a lease whatever its
	// state.
	ChargeOrphan(ctx context.Context, id string, spent, uncollected int64) error

	// InsertUsage stores usage rows, skipping any whose request id is
	// already stored, and returns the request ids it inserted. A row
	// with one part (UsageRecord.OnePart) stores it with the row.
	InsertUsage(ctx context.Context, recs []*UsageRecord) (inserted []string, err error)
	// InsertUsageParts stores the parts of inserted usage rows, except
	// a part InsertUsage already stored with its row in this transaction
	// (the row's only part: OnePart).
	InsertUsageParts(ctx context.Context, parts []UsagePart) error
	// AgedUsage locks and returns up to limit usage rows created before
	// `before` and after the cursor, oldest first, with their parts and
	// the state of the leases and the accounts of the packages the parts
	// name.
	AgedUsage(ctx context.Context, before time.Time, after UsageCursor, limit int) (AgedUsage, error)
	// RollUpUsage deletes the usage rows ids and their parts, and adds days
	// and parts to their roll-ups (creating missing ones). Fewer rows than
	// ids to delete is a conflict that runs the transaction again.
	RollUpUsage(ctx context.Context, ids []string, days []UsageDay, parts []PartsRollup) error

	// LockLimit locks and returns the rule of (subject, id); found=false
	// when there is none.
	LockLimit(ctx context.Context, subject, id string) (r LimitRule, found bool, err error)
	// PutLimit creates or replaces a rule.
	PutLimit(ctx context.Context, r LimitRule) error
}

// Lease states, as stored.
const (
	LeaseActive = "active"
	LeaseClosed = "closed"
)

// LeaseRow is a lease as the ledger stores it: credit moved from a source
// (a package id, or cashSource of the account) to a holder process.
type LeaseRow struct {
	ID          string
	Holder      string
	AccountID   string
	Source      string
	Granted     int64
	Spent       int64
	Uncollected int64
	Returned    int64
	State       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Credit kinds, as stored.
const (
	CreditTopUp   = "topup"
	CreditPackage = "package"
	// CreditAdjust is an operator's cash correction, up or down (Micros
	// signed); the audit counts it with the top-ups.
	CreditAdjust = "adjust"
	// CreditPackageAdjust is an operator's package correction (Tokens
	// signed, Ref the package): a shrink or a revoke.
	CreditPackageAdjust = "package_adjust"
)

// Credit records money put into an account: a top-up (Micros) or a
// package grant (Tokens, Ref = the package id).
type Credit struct {
	ID        string
	AccountID string
	Kind      string
	Micros    int64
	Tokens    int64
	Ref       string
	Note      string
	CreatedAt time.Time
}

// UsagePart is one part of a usage row as stored: Seq orders a row's
// parts.
type UsagePart struct {
	RequestID string
	Seq       int
	Part
}

// LedgerSnapshot is what the audit reads, all from one snapshot.
type LedgerSnapshot struct {
	// Packages have ID, AccountID, TokensGranted and Unleased set.
	Packages []Package
	// Wallets is each account's unleased cash.
	Wallets map[string]int64
	// TopUps is the sum of each account's top-ups.
	TopUps map[string]int64
	Leases []LeaseRow
	// Usage rows carry no parts; Parts holds them.
	Usage []UsageRecord
	Parts []UsagePart
	// UsageDays and PartsRollups are the roll-ups of usage rows and parts
	// that retention deleted.
	UsageDays    []UsageDay
	PartsRollups []PartsRollup
}
