package platform

import (
	"context"
	"strconv"
	"time"
)

// Files and batches (docs/v4.md §12, docs/design.md §10): an account's
// uploaded files, and the batch jobs that run the lines of a JSONL file
// as metered calls at the batch price.

// File purposes (docs/v4.md §12). PurposeBatchOutput marks the output and
// error files the server writes for a batch.
const (
	PurposeBatch       = "batch"
	PurposeBatchOutput = "batch_output"
	PurposeRetrieval   = "retrieval"
	PurposeFineTune    = "fine-tune"
	PurposeVoiceClone  = "voice-clone-input"
)

// File is an uploaded (or server-written) file's record; its content is
// kept by the file service (a directory, or the database).
type File struct {
	ID        string
	AccountID string
	Filename  string
	Purpose   string
	Bytes     int64
	CreatedAt time.Time
}

// FileQuery selects an account's files for a listing page.
type FileQuery struct {
	AccountID string
	Purpose   string // "" = any
	After     string // a file id: the page starts after it
	Limit     int
	Ascending bool // oldest first; default newest first
}

// FileStore keeps file records, and their content when the service keeps
// it in the database (content nil: kept elsewhere).
type FileStore interface {
	// CreateFile stores f (and content when not nil) unless the account's
	// files would then hold more than quota bytes (quota < 0: no cap);
	// created is false then.
	CreateFile(ctx context.Context, f File, content []byte, quota int64) (created bool, err error)
	// ReplaceFile stores f and its content, replacing a file of that id
	// (a batch's output, written again by a finalization that is re-run).
	ReplaceFile(ctx context.Context, f File, content []byte) error
	// GetFile returns the account's file, or ErrNotFound.
	GetFile(ctx context.Context, accountID, id string) (File, error)
	// FileContent returns the content stored with the file.
	FileContent(ctx context.Context, id string) ([]byte, error)
	ListFiles(ctx context.Context, q FileQuery) ([]File, error)
	// DeleteFile deletes the account's file and its stored content;
	// ErrNotFound when there is none.
	DeleteFile(ctx context.Context, accountID, id string) error
	// FileBytes is the size of every file the account holds.
	FileBytes(ctx context.Context, accountID string) (int64, error)
}

// Batch statuses (the SDKs' Batch.status, docs/v4.md §12).
const (
	BatchValidating = "validating"
	BatchFailed     = "failed"
	BatchInProgress = "in_progress"
	BatchFinalizing = "finalizing"
	BatchCompleted  = "completed"
	BatchExpired    = "expired"
	BatchCancelling = "cancelling"
	BatchCancelled  = "cancelled"
)

// Batch is a batch job.
type Batch struct {
	ID               string
	AccountID        string
	KeyID            string
	Endpoint         string // the wire spelling the client chose
	InputFileID      string
	CompletionWindow string
	Metadata         map[string]string
	AutoDeleteInput  bool
	Status           string
	// Final is the status a finalizing batch ends in (completed,
	// cancelled or expired).
	Final        string
	Total        int
	Completed    int
	Failed       int
	OutputFileID string
	ErrorFileID  string
	// Errors are the input's line errors found at validation (the first
	// ones), for the Batch object's errors list.
	Errors []BatchError

	CreatedAt, InProgressAt, ExpiresAt, FinalizingAt, CompletedAt time.Time
	FailedAt, ExpiredAt, CancellingAt, CancelledAt                time.Time
}

// BatchError is one line error of a batch's input.
type BatchError struct {
	Code    string `json:"code"`
	Line    int    `json:"line"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// Batch line states.
const (
	LineQueued    = "queued"
	LineRunning   = "running"
	LineDone      = "done"
	LineFailed    = "failed"
	LineCancelled = "cancelled"
)

// BatchLine is one request of a batch: validated at creation, run once by
// a worker that holds its lease.
type BatchLine struct {
	BatchID   string
	Line      int // 1-based line number in the input file
	CustomID  string
	Model     string
	Prompt    int    // the prompt estimate the validator made
	Body      []byte // the request body (validated)
	State     string
	Result    []byte // the output or error file's line
	AccountID string
	KeyID     string
	Endpoint  string // the batch's endpoint, as the request log names it
}

// Operations a batch runs; a batch runs one (docs/v4.md §12).
const (
	BatchOpChat       = "chat"
	BatchOpEmbeddings = "embeddings"
)

// batchEndpoints maps every accepted spelling of a batch endpoint or
// line url to its operation: the SDKs' /v1/… Literal, the cloud's own
// /v4/… examples, the full V4 path and the bare one.
var batchEndpoints = map[string]string{
	"/v1/chat/completions": BatchOpChat, "/v4/chat/completions": BatchOpChat,
	"/api/paas/v4/chat/completions": BatchOpChat, "/chat/completions": BatchOpChat,
	"/v1/embeddings": BatchOpEmbeddings, "/v4/embeddings": BatchOpEmbeddings,
	"/api/paas/v4/embeddings": BatchOpEmbeddings, "/embeddings": BatchOpEmbeddings,
}

// BatchOp returns the operation of an endpoint spelling, or "".
func BatchOp(endpoint string) string { return batchEndpoints[endpoint] }

// LineRequestID is the request-log (and usage) id of a batch line: derived
// from the batch and the line, so a line run again after a crash settles
// into the same usage row, which the meter stores once (docs/design.md
// §10).
func LineRequestID(batchID string, line int) string {
	return batchID + "-" + strconv.Itoa(line)
}

// BatchQuery selects an account's batches for a listing page, newest
// first (account "" with the operator: every account's).
type BatchQuery struct {
	AccountID string
	After     string
	Limit     int
}

// BatchStore keeps batches and their lines; claims follow the task
// store's lease pattern (docs/design.md §3 "Durable tasks").
type BatchStore interface {
	// CreateBatch stores b with its lines in one transaction.
	CreateBatch(ctx context.Context, b Batch, lines []BatchLine) error
	GetBatch(ctx context.Context, accountID, id string) (Batch, error)
	ListBatches(ctx context.Context, q BatchQuery) ([]Batch, error)
	// CancelBatch moves a validating or in-progress batch to cancelling
	// and its queued lines to cancelled; ok is false when the batch is in
	// another status (returned in b).
	CancelBatch(ctx context.Context, accountID, id string, now time.Time) (b Batch, ok bool, err error)
	// ClaimLines claims up to n queued lines of in-progress batches, at
	// most perBatch running per batch, oldest batch first.
	ClaimLines(ctx context.Context, worker string, n, perBatch int, now, leaseUntil time.Time) ([]BatchLine, error)
	// RenewLines extends the leases of the worker's running lines.
	RenewLines(ctx context.Context, worker string, leaseUntil time.Time) error
	// FinishLine stores a held line's outcome (done or failed) and counts
	// it in its batch, in one transaction; false when the claim was lost.
	FinishLine(ctx context.Context, l BatchLine, worker string) (bool, error)
	// RequeueLine puts a held line back, not to be claimed before
	// notBefore (a limit refused it for now).
	RequeueLine(ctx context.Context, l BatchLine, worker string, notBefore time.Time) error
	// RecoverLines requeues running lines whose lease ran out (their
	// worker died); they run again under the same request id.
	RecoverLines(ctx context.Context, now time.Time) (int, error)
	// ExpireBatches fails the queued lines of in-progress batches past
	// their expiry with result(line) and marks the batches to end expired.
	ExpireBatches(ctx context.Context, now time.Time, result func(BatchLine) []byte) (int, error)
	// ClaimFinalize claims one batch with no queued or running line left
	// (status in progress or cancelling, or finalizing with its lease run
	// out) and marks it finalizing.
	ClaimFinalize(ctx context.Context, worker string, now, leaseUntil time.Time) (Batch, bool, error)
	// BatchLines returns a batch's lines in line order.
	BatchLines(ctx context.Context, batchID string) ([]BatchLine, error)
	// FinishBatch ends a finalizing batch with its final status and files.
	FinishBatch(ctx context.Context, b Batch, worker string, now time.Time) (bool, error)
}
