package console

// The playground (docs/console.md §9): a chat with one of the account's
// models from the browser, streamed to a small script, run through the
// same metered call as the V4 API (platform/metered), so it is limited,
// charged and logged like any other request of the account.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/zhipuai"
)

// PlayOptions wire the playground. Without Calls the page says the
// playground is not available on this server.
type PlayOptions struct {
	// Calls is the API's metered call service: the playground has no
	// path of its own to a model.
	Calls *metered.Service
	// Catalogue lists the models; the playground offers the chat ones.
	Catalogue platform.Catalogue
	// WriteTimeout bounds one write of the stream to the browser [30s]: a
	// browser that stops reading ends the call instead of holding it.
	WriteTimeout time.Duration
}

// SettingsStore is what the playground, the member-key switch and
// sign-up read and write (platform/store.SQL has it).
type SettingsStore interface {
	AccountSettings(ctx context.Context, accountID string) (platform.AccountSettings, error)
	SetMembersManageKeys(ctx context.Context, accountID string, on bool, actor string, at time.Time) (bool, error)
	ConsoleKey(ctx context.Context, k platform.Key) (string, error)
	CreateSignUp(ctx context.Context, a platform.Account, u platform.User) error
	DeleteSignUp(ctx context.Context, accountID, userID string) error
}

// Bounds of the playground's form.
const (
	maxPlayText = 32 << 10 // system prompt and message, each
	// consoleKeyName names the console key in `glm keys list`, where it
	// shows as revoked (docs/console.md §9).
	consoleKeyName = "console playground (not usable on the API)"
)

func (c *Console) playRoutes(m *mux.Mux) {
	m.HandleFunc("GET "+Prefix+"/playground", c.page(c.signedIn(c.playground)))
	m.HandleFunc("POST "+Prefix+"/playground", c.page(c.signedIn(c.play)))
	m.HandleFunc("POST "+Prefix+"/settings/members", c.page(c.signedIn(c.setMembers)))
	m.HandleFunc("GET "+Prefix+"/signup", c.page(c.signUpForm))
	m.HandleFunc("POST "+Prefix+"/signup", c.page(c.signUp))
}

// playData is the playground page: the form as typed, the models, and an
// answer when the form was posted without the script.
type playData struct {
	Models      []platform.ModelInfo
	Model       string
	System      string
	Message     string
	Temperature string
	Thinking    bool
	// Field and Error: the refused field and its message; Error alone is
	// a refusal of the call (balance, limits, the model's backend).
	Field, Error string
	Answer       string
	Reasoning    string
	Usage        *platform.Usage
	RequestID    string
	Off          bool
}

// chatModels are the catalogue's chat models: the ones every account may
// use (packages scope what pays, not what may be called).
func (c *Console) chatModels() []platform.ModelInfo {
	if c.o.Play.Catalogue == nil {
		return nil
	}
	var out []platform.ModelInfo
	for _, m := range c.o.Play.Catalogue.Models() {
		if m.Chat() {
			out = append(out, m)
		}
	}
	return out
}

func (c *Console) playground(q *req) error {
	d := &playData{Models: c.chatModels(), Temperature: "0.95", Off: c.o.Play.Calls == nil}
	for i, m := range d.Models {
		// A GLM model is the natural first choice over the role-play and
		// code models that sort before it.
		if i == 0 || strings.HasPrefix(m.ID, "glm-") && !strings.HasPrefix(d.Model, "glm-") {
			d.Model = m.ID
		}
	}
	c.render(q, http.StatusOK, "playground.html", d)
	return nil
}

// playForm reads and checks the form: a refused field comes back with
// its catalogue message and the form as typed.
func (c *Console) playForm(q *req) (*playData, *zhipuai.ChatCompletionRequest, platform.ModelInfo) {
	r := q.r
	d := &playData{Models: c.chatModels(), Model: r.PostFormValue("model"), System: r.PostFormValue("system"),
		Message: r.PostFormValue("message"), Temperature: strings.TrimSpace(r.PostFormValue("temperature")),
		Thinking: r.PostFormValue("thinking") != "", Off: c.o.Play.Calls == nil}
	var info platform.ModelInfo
	for _, m := range d.Models {
		if m.ID == d.Model {
			info = m
		}
	}
	refuse := func(field, msg string) (*playData, *zhipuai.ChatCompletionRequest, platform.ModelInfo) {
		d.Field, d.Error = field, msg
		return d, nil, info
	}
	if info.ID == "" {
		return refuse("model", "play.model_bad")
	}
	if strings.TrimSpace(d.Message) == "" {
		return refuse("message", "play.message_empty")
	}
	if len(d.Message) > maxPlayText {
		return refuse("message", "play.text_long")
	}
	if len(d.System) > maxPlayText {
		return refuse("system", "play.text_long")
	}
	req := &zhipuai.ChatCompletionRequest{Model: info.ID, Stream: true}
	if d.Temperature != "" {
		// The documented range, [0, 1] (docs/v4.md §3), checked here so the
		// message stands next to the field.
		t, err := strconv.ParseFloat(d.Temperature, 64)
		if err != nil || t != t || t < 0 || t > 1 {
			return refuse("temperature", "play.temperature_range")
		}
		req.Temperature = &t
	}
	if strings.TrimSpace(d.System) != "" {
		req.Messages = append(req.Messages, zhipuai.SystemMessage(d.System))
	}
	req.Messages = append(req.Messages, zhipuai.UserMessage(d.Message))
	if info.Caps.Thinking {
		kind := zhipuai.ThinkingDisabled
		if d.Thinking {
			kind = zhipuai.ThinkingEnabled
		}
		req.Thinking = &zhipuai.Thinking{Type: kind}
	}
	// The one chat validator decides what a body may hold (docs/design.md
	// §3 "Wire types once").
	if err := zhipuai.ValidateChatRequest(req); err != nil {
		return refuse("message", "play.invalid")
	}
	return d, req, info
}

// play runs one playground call. The script asks for the stream
// (X-Console-Stream); a form posted without it gets the page with the
// whole answer.
func (c *Console) play(q *req) error {
	streaming := q.r.Header.Get("X-Console-Stream") != ""
	d, req, info := c.playForm(q)
	if d.Off {
		return errNotFound
	}
	if req == nil {
		return c.playRefused(q, streaming, http.StatusBadRequest, d)
	}
	prompt := platform.EstimateChatPromptTokens(req)
	if info.ContextTokens > 0 && prompt >= info.ContextTokens {
		d.Field, d.Error = "message", "play.text_long"
		return c.playRefused(q, streaming, http.StatusBadRequest, d)
	}
	keyID, err := c.consoleKey(q)
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	calls := c.o.Play.Calls
	now := calls.Now()
	var call metered.Call
	calls.Begin(&call, platform.NewID(now), platform.EndpointChat, now)
	call.Presence = presence{q.r}
	call.SetCaller(platform.Principal{AccountID: q.account.ID, KeyID: keyID})
	call.Row.Model, call.Row.Stream = req.Model, true
	defer call.End(ctx)
	d.RequestID = call.Row.ID
	st, err := call.ChatStream(ctx, platform.ChatRequest{Req: req}, prompt)
	if err != nil {
		e := c.playFailed(q, &call, err)
		d.Error = e
		return c.playRefused(q, streaming, platform.AsError(err).Status(), d)
	}
	out := newPlayWriter(q.w, streaming, c.o.Play.WriteTimeout)
	c.relayPlay(q, &call, st, out, d)
	if !streaming {
		c.render(q, http.StatusOK, "playground.html", d)
	}
	return nil
}

// relayPlay reads the metered stream to its end: each chunk's answer and
// reasoning go to the browser as they come (or into d without the
// script). The call settles on the usage the stream reported.
func (c *Console) relayPlay(q *req, call *metered.Call, st *metered.Stream, out *playWriter, d *playData) {
	defer st.Close()
	for {
		ch, err := st.Next()
		if errors.Is(err, io.EOF) {
			call.Row.HTTPStatus = http.StatusOK
			break
		}
		if err != nil {
			if call.CallerLeft() {
				call.Row.HTTPStatus = http.StatusOK
				return
			}
			d.Error = c.playFailed(q, call, err)
			call.Row.HTTPStatus = http.StatusOK // the status line went out with the first chunk
			out.event(q, playEvent{Error: view0(q).T(d.Error) + codeSuffix(err)}, true)
			return
		}
		if len(ch.Data) == 0 {
			continue
		}
		var chunk zhipuai.ChatCompletionChunk
		if json.Unmarshal(ch.Data, &chunk) != nil {
			continue
		}
		if chunk.Error != nil {
			d.Error = "play.err.upstream"
			call.Row.ErrorCode = platform.CodeNetwork
			out.event(q, playEvent{Error: view0(q).T(d.Error) + " (" + fmt.Sprint(chunk.Error.Code) + ")"}, true)
			continue
		}
		ev := playEvent{}
		for _, choice := range chunk.Choices {
			ev.Text += choice.Delta.Content
			ev.Reasoning += choice.Delta.ReasoningContent
		}
		if chunk.Usage != nil {
			u := usageOfChunk(*chunk.Usage)
			d.Usage, ev.Usage = &u, &u
		}
		d.Answer += ev.Text
		d.Reasoning += ev.Reasoning
		if ev.Text == "" && ev.Reasoning == "" && ev.Usage == nil {
			continue
		}
		if !out.event(q, ev, !ch.More) {
			st.Abandon()
			return
		}
	}
	out.event(q, playEvent{Done: true, RequestID: call.Row.ID}, true)
}

func usageOfChunk(u zhipuai.Usage) platform.Usage {
	return platform.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

// playFailed records a refused or failed call on its row (code, status,
// cause for the operator), logs it, and returns the catalogue key of the
// message the page shows.
func (c *Console) playFailed(q *req, call *metered.Call, err error) string {
	e := platform.AsError(err)
	call.Row.ErrorCode, call.Row.HTTPStatus = e.Code, e.Status()
	call.SetErrorDetail(e)
	c.metrics.errors.WithLabelValues("playground", strconv.Itoa(e.Status())).Inc()
	c.log.Warn("console: playground call failed", "account", q.account.ID, "request_id", call.Row.ID,
		"code", e.Code, "err", err)
	switch e.Code {
	case platform.CodeArrears:
		return "play.err.balance"
	case platform.CodeConcurrency, platform.CodeRateLimit, platform.CodeDailyQuota:
		return "play.err.limit"
	}
	return "play.err.upstream"
}

func codeSuffix(err error) string { return " (" + platform.AsError(err).Code + ")" }

// playRefused answers a form or a call that was refused before any
// output: the script gets the field and message as JSON, a plain form
// the page with the message next to the field.
func (c *Console) playRefused(q *req, streaming bool, status int, d *playData) error {
	if !streaming {
		c.render(q, status, "playground.html", d)
		return nil
	}
	msg := view0(q).T(d.Error)
	if d.Field == "" && d.RequestID != "" {
		msg += " (" + d.RequestID + ")"
	}
	b, _ := json.Marshal(playEvent{Field: d.Field, Error: msg})
	q.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(b)
	return nil
}

// consoleKey is the account's console key id, made on first use: a key
// stored revoked, so the API never accepts it, that the playground's
// calls are limited, charged and logged under (docs/console.md §9).
func (c *Console) consoleKey(q *req) (string, error) {
	ctx := q.r.Context()
	st, err := c.o.Store.AccountSettings(ctx, q.account.ID)
	if err != nil {
		return "", err
	}
	if st.ConsoleKeyID != "" {
		return st.ConsoleKeyID, nil
	}
	k, err := platform.NewKey(q.account.ID, consoleKeyName, c.now())
	if err != nil {
		return "", err
	}
	return c.o.Store.ConsoleKey(ctx, k)
}

// presence tells the metered call whether the browser went away.
type presence struct{ r *http.Request }

func (p presence) Left() bool { return p.r.Context().Err() != nil }

// playEvent is one line of the playground's stream (NDJSON): a piece of
// the answer or of the reasoning, the usage, an error, or the end.
type playEvent struct {
	Text      string          `json:"t,omitempty"`
	Reasoning string          `json:"r,omitempty"`
	Usage     *platform.Usage `json:"u,omitempty"`
	Error     string          `json:"error,omitempty"`
	Field     string          `json:"field,omitempty"`
	Done      bool            `json:"done,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
}

// playWriter writes the stream's lines, each flushed when the backend's
// read is complete (docs/design.md §3 "Streams"), under a write deadline.
type playWriter struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	streaming bool
	timeout   time.Duration
	started   bool
	failed    bool
}

func newPlayWriter(w http.ResponseWriter, streaming bool, timeout time.Duration) *playWriter {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &playWriter{w: w, rc: http.NewResponseController(w), streaming: streaming, timeout: timeout}
}

// event writes one line; false when the browser is gone or stopped
// reading.
func (p *playWriter) event(q *req, ev playEvent, flush bool) bool {
	if !p.streaming || p.failed {
		return !p.failed
	}
	if !p.started {
		h := p.w.Header()
		h.Set("Content-Type", "application/x-ndjson; charset=utf-8")
		h.Set("X-Accel-Buffering", "no")
		p.w.WriteHeader(http.StatusOK)
		p.started = true
	}
	b, _ := json.Marshal(ev)
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	if _, err := p.w.Write(append(b, '\n')); err != nil {
		p.failed = true
		return false
	}
	if flush {
		if err := p.rc.Flush(); err != nil {
			p.failed = true
			return false
		}
	}
	return true
}

// view0 is a view for catalogue lookups outside a template.
func view0(q *req) *view { return &view{Lang: q.lang} }
