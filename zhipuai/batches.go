package zhipuai

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// BatchesService calls the Batch API (docs/v4.md §12): client.Batches.
// Create, Retrieve, List and Cancel, as the Python SDK's client.batches.
type BatchesService struct {
	client *Client
}

// Batch endpoints: the SDK's Literal spells them the OpenAI way; the
// cloud's own examples use /v4/… (both are accepted by glm serve).
const (
	BatchEndpointChat       = "/v1/chat/completions"
	BatchEndpointEmbeddings = "/v1/embeddings"
)

// Batch statuses (the SDK's Batch.status Literal).
const (
	BatchStatusValidating = "validating"
	BatchStatusFailed     = "failed"
	BatchStatusInProgress = "in_progress"
	BatchStatusFinalizing = "finalizing"
	BatchStatusCompleted  = "completed"
	BatchStatusExpired    = "expired"
	BatchStatusCancelling = "cancelling"
	BatchStatusCancelled  = "cancelled"
)

// BatchCreateParams is the body of POST /batches (the SDK's
// batches.create arguments). AutoDeleteInputFile nil sends nothing; the
// Python SDK always sends its default, true.
type BatchCreateParams struct {
	InputFileID         string            `json:"input_file_id"`
	Endpoint            string            `json:"endpoint"`
	CompletionWindow    string            `json:"completion_window,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	AutoDeleteInputFile *bool             `json:"auto_delete_input_file,omitempty"`
}

// Batch is a batch job (the SDK's Batch). Optional timestamps are nil
// until the batch reaches the state they mark.
type Batch struct {
	ID               string              `json:"id"`
	Object           string              `json:"object"`
	Endpoint         string              `json:"endpoint"`
	InputFileID      string              `json:"input_file_id"`
	CompletionWindow string              `json:"completion_window"`
	Status           string              `json:"status"`
	CreatedAt        int64               `json:"created_at"`
	OutputFileID     *string             `json:"output_file_id"`
	ErrorFileID      *string             `json:"error_file_id"`
	Errors           *BatchErrors        `json:"errors"`
	InProgressAt     *int64              `json:"in_progress_at"`
	ExpiresAt        *int64              `json:"expires_at"`
	FinalizingAt     *int64              `json:"finalizing_at"`
	CompletedAt      *int64              `json:"completed_at"`
	FailedAt         *int64              `json:"failed_at"`
	ExpiredAt        *int64              `json:"expired_at"`
	CancellingAt     *int64              `json:"cancelling_at"`
	CancelledAt      *int64              `json:"cancelled_at"`
	RequestCounts    *BatchRequestCounts `json:"request_counts"`
	Metadata         map[string]string   `json:"metadata"`
}

// Done reports whether the batch has reached a final status.
func (b *Batch) Done() bool {
	switch b.Status {
	case BatchStatusCompleted, BatchStatusFailed, BatchStatusExpired, BatchStatusCancelled:
		return true
	}
	return false
}

// BatchRequestCounts are a batch's progress (the SDK's BatchRequestCounts).
type BatchRequestCounts struct {
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Total     int `json:"total"`
}

// BatchErrors lists the input's line errors (the SDK's Errors).
type BatchErrors struct {
	Object string       `json:"object"`
	Data   []BatchError `json:"data"`
}

// BatchError is one line error (the SDK's BatchError).
type BatchError struct {
	Code    string  `json:"code"`
	Line    *int    `json:"line"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

// BatchList is a page of batches (the SDK's SyncCursorPage[Batch]).
type BatchList struct {
	Object  string  `json:"object"`
	Data    []Batch `json:"data"`
	FirstID string  `json:"first_id,omitempty"`
	LastID  string  `json:"last_id,omitempty"`
	HasMore bool    `json:"has_more"`
}

// BatchListParams page a listing: After is the last id of the previous
// page; Limit 1–100 (default 20).
type BatchListParams struct {
	After string
	Limit int
}

// BatchRequestLine is one line of a batch input file.
type BatchRequestLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// BatchResultLine is one line of a batch's output or error file: the
// reply in Response, or why there is none in Error.
type BatchResultLine struct {
	ID       string          `json:"id"`
	CustomID string          `json:"custom_id"`
	Response *BatchResponse  `json:"response"`
	Error    *BatchLineError `json:"error"`
}

// BatchResponse is a line's HTTP answer: status, request id and the V4
// reply (a ChatCompletion, an EmbeddingResponse, or an error envelope).
type BatchResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

// BatchLineError says why a line has no reply.
type BatchLineError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Create starts a batch over an uploaded file of purpose batch.
func (s *BatchesService) Create(ctx context.Context, p BatchCreateParams, opts ...RequestOption) (*Batch, error) {
	if p.InputFileID == "" {
		return nil, missing("input_file_id", "is required")
	}
	if p.Endpoint == "" {
		return nil, missing("endpoint", "is required")
	}
	if p.CompletionWindow == "" {
		p.CompletionWindow = "24h"
	}
	cl, err := newCall(http.MethodPost, "/batches", p)
	if err != nil {
		return nil, err
	}
	var out Batch
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Retrieve returns a batch.
func (s *BatchesService) Retrieve(ctx context.Context, batchID string, opts ...RequestOption) (*Batch, error) {
	if batchID == "" {
		return nil, missing("batch_id", "is required")
	}
	var out Batch
	if err := s.client.do(ctx, call{method: http.MethodGet, path: "/batches/" + url.PathEscape(batchID)}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns a page of the caller's batches, newest first.
func (s *BatchesService) List(ctx context.Context, p BatchListParams, opts ...RequestOption) (*BatchList, error) {
	q := url.Values{}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	path := "/batches"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out BatchList
	if err := s.client.do(ctx, call{method: http.MethodGet, path: path}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Cancel stops a batch: no new line starts, running ones finish, and the
// batch ends cancelled with the output it has.
func (s *BatchesService) Cancel(ctx context.Context, batchID string, opts ...RequestOption) (*Batch, error) {
	if batchID == "" {
		return nil, missing("batch_id", "is required")
	}
	var out Batch
	if err := s.client.do(ctx, call{method: http.MethodPost, path: "/batches/" + url.PathEscape(batchID) + "/cancel"}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
