package zhipuaitest

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/glmkit/glmkit/zhipuai"
)

// kind says what a Reply answers with.
type kind int

const (
	// kindDefault is the zero Reply: the endpoint's default answer (an echo
	// for chat, hashed vectors for embeddings, a picture URL for images).
	kindDefault kind = iota
	kindText
	kindToolCalls
	kindError
	kindInBand
	kindEmbeddings
)

// Reply is one scripted answer. Build it with Text, ToolCalls, Error,
// InBandError or Embeddings and refine it with the With… methods; every
// method has a value receiver and returns a changed copy, so a Reply can be
// kept in a variable and reused. The zero Reply means "the default answer"
// (what Handle's default returns).
type Reply struct {
	kind    kind
	content string
	// reasoning is the thinking before the answer, streamed first.
	reasoning []string
	calls     []zhipuai.ToolCall
	status    int
	code      string
	message   string
	vectors   [][]float64
	usage     *zhipuai.Usage
	// search is the web_search sources the answer carries (WithWebSearch).
	search []zhipuai.WebSearchResult
	// details are cached and reasoning tokens (WithUsageDetails).
	details    [2]int
	hasDetails bool
	finish     string
	chunks     []string
	delay      time.Duration
	cut        bool
	cutAfter   int
	stall      bool
	stallAt    int
	headers    [][2]string
	times      int
	fail       bool
	failCode   string
	failMsg    string
}

// Text answers with content: on a sync call as choices[0].message.content;
// on a stream split into pieces of a few runes (see WithChunks); on an
// async task as the SUCCESS result. finish_reason is "stop".
func Text(content string) Reply {
	return Reply{kind: kindText, content: content}
}

// ToolCalls answers with function calls and finish_reason "tool_calls"
// (docs/v4.md §4): content is null on a sync reply, and on a stream the calls
// arrive whole in one chunk without finish_reason, followed by the final
// chunk. Empty ids are filled in ("call_" + digits, like the tutorial's
// call_8313806677844095616), Type defaults to "function" and Index is set
// to the call's position.
func ToolCalls(calls ...zhipuai.ToolCall) Reply {
	return Reply{kind: kindToolCalls, calls: slices.Clone(calls)}
}

// Error answers with the V4 error envelope {"error":{"code","message"}}
// (docs/v4.md §6) and the given HTTP status, Content-Type application/json. On a
// stream request it is written before any stream byte, as the platform does
// for pre-stream failures; on an async submit the submit itself fails.
//
// Embeddings and images calls also take an Error from the queue: an Error
// answers whichever call reaches the queue first.
func Error(httpStatus int, code, message string) Reply {
	if httpStatus < 100 || httpStatus > 999 {
		httpStatus = http.StatusInternalServerError // WriteHeader would panic
	}
	return Reply{kind: kindError, status: httpStatus, code: code, message: message}
}

// InBandError is a failure after streaming began (docs/v4.md §4 "Stream"): HTTP
// 200, a few content chunks (the default echo text, or WithChunks), then
// one event data: {"error":{"code","message"}} and the stream ends without
// a final chunk and without [DONE]. On an async task it becomes a FAIL
// with this error; on a sync call it is the error envelope under HTTP 200
// (what a gateway that already committed the status sends).
func InBandError(code, message string) Reply {
	return Reply{kind: kindInBand, code: code, message: message}
}

// Embeddings answers an embeddings call with exactly these vectors, in
// order (data[i].embedding = vectors[i], whatever the number of inputs, so
// a test can also script a wrong count). Chat calls never take it.
func Embeddings(vectors ...[]float64) Reply {
	vs := make([][]float64, len(vectors))
	for i, v := range vectors {
		vs[i] = slices.Clone(v)
	}
	return Reply{kind: kindEmbeddings, vectors: vs}
}

// WithUsage sets the reported usage; total_tokens is their sum. Without it
// usage is still always present, estimated from the text lengths (one token
// per 4 bytes of UTF-8, rounded up).
func (r Reply) WithUsage(prompt, completion int) Reply {
	r.usage = &zhipuai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
	return r
}

// WithReasoning makes the reply a thinking model's (docs/v4.md §11): the
// pieces arrive first as delta.reasoning_content chunks, one each, then the
// content; a sync or async reply carries their concatenation as
// message.reasoning_content. Unless WithUsage says otherwise, the estimated
// usage counts them as completion tokens and reports them in
// completion_tokens_details.reasoning_tokens.
func (r Reply) WithReasoning(pieces ...string) Reply {
	r.reasoning = slices.Clone(pieces)
	return r
}

// WithWebSearch makes the answer carry the sources of a web search, as
// the cloud's reply does when the web_search tool ran: a top-level
// web_search array on the sync reply and on the stream's first chunk.
func (r Reply) WithWebSearch(results ...zhipuai.WebSearchResult) Reply {
	r.search = slices.Clone(results)
	return r
}

// WithUsageDetails adds the usage details of docs/v4.md §11 to the usage
// set by WithUsage (or to the estimate): cached is a part of prompt_tokens,
// reasoning a part of completion_tokens; a negative value leaves that
// detail out.
func (r Reply) WithUsageDetails(cached, reasoning int) Reply {
	r.details = [2]int{cached, reasoning}
	r.hasDetails = true
	return r
}

// WithFinish sets finish_reason, e.g. "length", "sensitive" or
// "network_error" (docs/v4.md §4).
func (r Reply) WithFinish(reason string) Reply {
	r.finish = reason
	return r
}

// WithChunks sets the exact content pieces of a stream, one chunk each.
// The sync and async content is then their concatenation.
func (r Reply) WithChunks(pieces ...string) Reply {
	r.chunks = slices.Clone(pieces)
	if r.chunks == nil {
		r.chunks = []string{}
	}
	if r.kind == kindDefault {
		r.kind = kindText
	}
	r.content = strings.Join(pieces, "")
	return r
}

// WithDelay waits d before each stream chunk, and before a sync (or error,
// embeddings, images, async submit) reply. The wait ends early when the
// client goes away or the server is closed, so a test that cancels its
// context sees the handler stop.
func (r Reply) WithDelay(d time.Duration) Reply {
	r.delay = d
	return r
}

// CutAfter makes a stream write n chunks and then abort the connection: no
// final chunk, no [DONE], the body ends with an unexpected EOF. n counts
// every event before [DONE] (content, tool call, final chunk); with n at or
// past that count only [DONE] is missing. On a non-stream call the
// connection is aborted before any response byte (a transport error for
// the client, e.g. to test retries).
func (r Reply) CutAfter(n int) Reply {
	r.cut = true
	r.cutAfter = max(n, 0)
	return r
}

// StallAfter makes a stream write n events and then send nothing more,
// holding the connection open until the client goes away or the server is
// closed: an upstream that hangs mid-stream (a fault the server must cut
// on its own idle bound). A non-stream call stalls before any response
// byte.
func (r Reply) StallAfter(n int) Reply {
	r.stall = true
	r.stallAt = max(n, 0)
	return r
}

// WithHeader adds a response header, e.g. Retry-After or x-should-retry.
func (r Reply) WithHeader(k, v string) Reply {
	r.headers = append(slices.Clip(r.headers), [2]string{k, v})
	return r
}

// Times makes Enqueue put the reply n times in the queue (n < 1 counts as 1).
func (r Reply) Times(n int) Reply {
	r.times = n
	return r
}

// Fail makes an async task end in FAIL with this error (the body carries
// {"error":{"code","message"}}, a glmkit addition: the cloud's FAIL body is
// undocumented, docs/v4.md §9). Sync and stream calls ignore it.
func (r Reply) Fail(code, message string) Reply {
	r.fail = true
	r.failCode = code
	r.failMsg = message
	return r
}

// applyHeaders writes the extra headers of r.
func (r Reply) applyHeaders(h http.Header) {
	for _, kv := range r.headers {
		h.Add(kv[0], kv[1])
	}
}

// forChat reports whether a chat call may take r from the queue.
func (r Reply) forChat() bool { return r.kind != kindEmbeddings }

// forEmbeddings reports whether an embeddings call may take r.
func (r Reply) forEmbeddings() bool { return r.kind == kindEmbeddings || r.kind == kindError }

// forImages reports whether an images (tokenizer, rerank) call may take r.
func (r Reply) forImages() bool { return r.kind == kindError }
