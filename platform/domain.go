package platform

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned by stores for a missing row. Callers turn it into
// the V4 code that fits their route (an unknown key is 1002, an unknown task
// 404).
var ErrNotFound = errors.New("not found")

// Account owns keys, tasks and the money billing keeps for it.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// DisabledAt is when an operator disabled the account (zero: enabled);
	// a disabled account's keys are refused.
	DisabledAt time.Time
}

// Disabled reports whether the account is disabled.
func (a Account) Disabled() bool { return !a.DisabledAt.IsZero() }

// Key is an API key "id.secret" (docs/v4.md §2). The id is 32 lowercase hex
// characters and the secret 16 alphanumerics: neither may contain a dot, as
// every SDK splits the key on its one dot (docs/v4.md §10 union rule).
type Key struct {
	ID        string
	AccountID string
	Name      string
	// Secret is the plaintext secret. Stores encrypt it at rest; lists leave
	// it empty where the caller only shows masked keys.
	Secret     string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero = never used
	RevokedAt  time.Time // zero = active
	// AccountDisabled is set by GetKey when the key's account is disabled:
	// the key is refused like a revoked one while it stays so.
	AccountDisabled bool
}

// Full returns the key as clients send it, "id.secret".
func (k Key) Full() string { return k.ID + "." + k.Secret }

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Masked shows a key without revealing it: the id's first four characters
// and the secret's last four, like the console's "ed79...xviK". When the
// secret is not loaded the id's last four characters stand in.
func (k Key) Masked() string {
	tail := k.Secret
	if tail == "" {
		tail = k.ID
	}
	if len(k.ID) < 4 || len(tail) < 4 {
		return "..."
	}
	return k.ID[:4] + "..." + tail[len(tail)-4:]
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewKey makes a fresh key for an account: a 32-hex id and a 16-character
// alphanumeric secret from crypto/rand.
func NewKey(accountID, name string, now time.Time) (Key, error) {
	secret := make([]byte, 16)
	// Rejection sampling keeps every character equally likely.
	buf := make([]byte, 64)
	n := 0
	for n < len(secret) {
		randomBytes(buf)
		for _, b := range buf {
			if int(b) < 256-256%len(alnum) && n < len(secret) {
				secret[n] = alnum[int(b)%len(alnum)]
				n++
			}
		}
	}
	return Key{ID: RandomID("", 16), AccountID: accountID, Name: name, Secret: string(secret), CreatedAt: now.UTC()}, nil
}

// randomBytes fills b from crypto/rand. The one policy for a failing
// source is to stop: since Go 1.24 crypto/rand.Read never returns an error
// (the runtime aborts instead), and an id or secret made from anything
// weaker would be guessable. The panic documents that contract.
func randomBytes(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("platform: crypto/rand failed: %v", err))
	}
}

// RandomID returns prefix followed by n random bytes as 2n lowercase hex
// characters. It is the one helper for random ids and never fails (see
// randomBytes).
func RandomID(prefix string, n int) string {
	b := make([]byte, n)
	randomBytes(b)
	return prefix + hex.EncodeToString(b)
}

// NewID returns a V4-style id: yyyyMMddHHmmss (UTC) followed by 16 hex
// characters, 30 characters in all (the 2025 id shape, docs/v4.md §4). It is
// URL-safe, so the Python SDK can put it in a path unescaped (docs/v4.md §10).
//
// The 16 hex characters are 5 of sub-second time and 11 random ones. The
// time is a tick of 2^-20 s (~1 µs) from a per-process clock that never
// repeats or goes back: a second id within one tick takes the next tick.
// So one process's ids sort in the order it made them, and a batch of
// request-log or usage rows lands at the end of the id indexes — a page
// or two per flush — not at random places across the current second's
// leaves (docs/design.md §6 "Ids in creation order"). A tick borrowed
// ahead shows in the id only past a million ids a second per process.
// A now more than a second behind the clock's last tick (a test's fixed
// clock, the system clock stepped back) restarts it from now.
//
// Unique without coordination: one process's ticks are distinct, so two
// ids collide only when two processes (replicas, or a process and its
// restart) make an id in the same tick and draw the same 44 random bits,
// odds 2^-44 a pair. With n ids a second across all processes, about
// n²/2^21 pairs a second share a tick: at 100,000 ids/s in all that is one
// collision in ~100 years of sustained load. Ids are names, not secrets:
// every lookup by id also checks the caller's account.
func NewID(now time.Time) string {
	t := idClock.next(now)
	var b [6]byte
	randomBytes(b[:])
	var out [30]byte
	time.Unix(t>>idTickBits, 0).UTC().AppendFormat(out[:0], "20060102150405")
	frac := t & (1<<idTickBits - 1)
	const digits = "0123456789abcdef"
	for i := 0; i < 5; i++ {
		out[14+i] = digits[frac>>(16-4*i)&0xf]
	}
	// 11 hex characters: all of 5 bytes and the high half of the sixth.
	hex.Encode(out[19:29], b[:5])
	out[29] = digits[b[5]>>4]
	return string(out[:])
}

// idTickBits is the sub-second resolution of NewID's clock: 2^20 ticks a
// second, five hex characters.
const idTickBits = 20

// idClock is NewID's per-process clock: the last tick handed out, as
// Unix seconds << idTickBits | tick within the second.
var idClock tickClock

type tickClock struct{ last atomic.Int64 }

// next returns now's tick, or the one after the last tick handed out
// when now's is not past it but at most a second behind it (see NewID).
func (c *tickClock) next(now time.Time) int64 {
	t := now.Unix()<<idTickBits | int64(now.Nanosecond())<<idTickBits/1e9
	for {
		last := c.last.Load()
		n := t
		if t <= last && last-t < 1<<idTickBits {
			n = last + 1
		}
		if c.last.CompareAndSwap(last, n) {
			return n
		}
	}
}

// ValidKeyID reports whether s has the shape of a key id (32 lowercase hex).
func ValidKeyID(s string) bool {
	if len(s) != 32 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// Task states as stored. Clients see PROCESSING for queued and running,
// SUCCESS and FAIL for the rest (docs/v4.md §4 "Async").
const (
	TaskQueued    = "queued"
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
)

// Task is an async chat completion, kept as a row so that it survives
// restarts and can be read from any replica (docs/design.md §3).
type Task struct {
	ID        string
	AccountID string
	KeyID     string
	// RequestID is the client's request_id, or the task id when none.
	RequestID string
	Model     string
	State     string
	// Request is the validated chat request as JSON.
	Request []byte
	// Result is the completion JSON on success.
	Result []byte
	// ErrorCode and ErrorMessage explain a failure in V4 terms.
	ErrorCode    string
	ErrorMessage string
	// Worker and LeaseUntil say who runs it and until when the claim holds
	// without renewal.
	Worker     string
	LeaseUntil time.Time
	Attempts   int
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

// WireStatus is the task_status clients see.
func (t Task) WireStatus() string {
	switch t.State {
	case TaskSucceeded:
		return "SUCCESS"
	case TaskFailed:
		return "FAIL"
	}
	return "PROCESSING"
}

// Endpoints as recorded in the request log.
const (
	EndpointChat        = "chat/completions"
	EndpointAsyncSubmit = "async/chat/completions"
	EndpointAsyncResult = "async-result"
	EndpointAsyncTask   = "async-task" // the execution of a task, carrying its tokens
	EndpointEmbeddings  = "embeddings"
	EndpointImages      = "images/generations"
	EndpointModels      = "models"
	EndpointTokenizer   = "tokenizer"
	EndpointRerank      = "rerank"
	EndpointFiles       = "files"
	EndpointBatches     = "batches"
	EndpointBatchLine   = "batch-line" // one line of a batch job, run by a worker
)

// RequestLog is one row of the request log: every API request is recorded
// exactly once, and every async task execution once more with the tokens it
// used (Endpoint EndpointAsyncTask, ID = task id).
type RequestLog struct {
	// ID is the server's id for the request (the X-Request-Id header); it is
	// the row's primary key, which makes a retried flush idempotent.
	ID string
	// RequestID is the client's request_id (or the reply's id when none).
	RequestID string
	CreatedAt time.Time
	AccountID string
	KeyID     string
	Model     string
	Endpoint  string
	Stream    bool
	Usage     Usage
	// Estimated is true when the upstream reported no usage (client gone,
	// cut stream) and the tokens are the server's conservative estimate.
	Estimated  bool
	LatencyMS  int64
	HTTPStatus int
	// ErrorCode is the V4 code of a failed request, "" on success.
	ErrorCode string
	// ErrorDetail is the cause of a failure for the operator (the wrapped
	// error chain, bounded); never sent to a client.
	ErrorDetail string
	Backend     string
	// Charge is what the meter settled (zero with the no-op meter).
	Charge Charge
}

// Usage is a token count in the request log and in a settlement (the wire
// zhipuai.Usage, its details flattened).
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
	// CachedTokens is the part of PromptTokens the upstream served from its
	// prompt cache (docs/v4.md §11): never in addition to PromptTokens.
	CachedTokens int
	// ReasoningTokens is the part of CompletionTokens spent thinking; it is
	// output and priced as output (docs/design.md §3 "Money").
	ReasoningTokens int
	// Images counts generated images (billed per image).
	Images int
	// ToolCalls counts uses of tools the cloud bills per call: a reply
	// that carries web_search results made one search (docs/v4.md §7).
	ToolCalls int
}
