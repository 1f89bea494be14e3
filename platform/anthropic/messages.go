package anthropic

import (
	"net/http"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleMessages serves POST /v1/messages, sync and stream: decode,
// resolve the model, translate to V4, check as a V4 request is checked,
// then the one metered call, and the reply translated back.
func (s *Server) handleMessages(x *exchange) {
	var req MessagesRequest
	if !x.readJSON(&req) {
		return
	}
	row := &x.call.Row
	row.Model, row.Stream = req.Model, req.Stream
	if req.MaxTokens == nil {
		x.fail(platform.Errorf(platform.CodeMissingField, "max_tokens is required"))
		return
	}
	creq, prompt, err := s.prepare(&req, true)
	if err != nil {
		x.fail(err)
		return
	}
	row.Model = creq.Model
	if req.Stream {
		s.relayStream(x, creq, req.Model, prompt)
		return
	}
	resp, _, err := x.call.Chat(x.r.Context(), platform.ChatRequest{Req: creq}, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	row.RequestID = resp.ID
	x.writeJSON(http.StatusOK, FromV4(resp, req.Model))
}

// handleCountTokens serves POST /v1/messages/count_tokens: the prompt
// estimate the reservation of the same request would use
// (platform.EstimateChatPromptTokens). It calls no model and is not
// billed; its row is in the request log like every request's.
func (s *Server) handleCountTokens(x *exchange) {
	var req MessagesRequest
	if !x.readJSON(&req) {
		return
	}
	x.call.Row.Model = req.Model
	creq, prompt, err := s.prepare(&req, false)
	if err != nil {
		x.fail(err)
		return
	}
	x.call.Row.Model = creq.Model
	x.writeJSON(http.StatusOK, CountTokensReply{InputTokens: prompt})
}

// prepare resolves the model, translates the request and checks it as
// the V4 API checks a chat body (zhipuai.ValidateChatRequest, images on
// a vision model only, the context window). max_tokens is fitted to what
// the model can write: agents ask for more than GLM models write (32K and
// up), and refusing would stop them, so the reservation and the upstream
// get the model's bound instead (docs/anthropic.md §3). The prompt
// estimate alone beyond the context is 1261.
func (s *Server) prepare(req *MessagesRequest, fit bool) (*zhipuai.ChatCompletionRequest, int, error) {
	info, err := s.models.Resolve(req.Model)
	if err != nil {
		return nil, 0, err
	}
	creq, err := ToV4(req, info.ID)
	if err != nil {
		return nil, 0, err
	}
	if err := zhipuai.ValidateChatRequest(creq); err != nil {
		return nil, 0, validationError(err)
	}
	if info.Kind != platform.KindVision {
		for _, m := range creq.Messages {
			for _, p := range m.Content.Parts {
				if p.Type == zhipuai.PartImageURL {
					return nil, 0, invalid("model %s (for %s) does not accept images; map the name to a vision model", info.ID, req.Model)
				}
			}
		}
	}
	prompt := platform.EstimateChatPromptTokens(creq)
	if info.ContextTokens > 0 && prompt >= info.ContextTokens {
		return nil, 0, platform.Errorf(platform.CodePromptTooLong,
			"prompt too long: about %d tokens exceed the %d-token context of %s", prompt, info.ContextTokens, info.ID)
	}
	if fit && creq.MaxTokens != nil {
		mt := *creq.MaxTokens
		if info.MaxOutput > 0 {
			mt = min(mt, info.MaxOutput)
		}
		if info.ContextTokens > 0 {
			mt = min(mt, info.ContextTokens-prompt)
		}
		creq.MaxTokens = &mt
	}
	return creq, prompt, nil
}

// validationError answers the V4 validator's refusal with its code and
// the Anthropic name of the field.
func validationError(err error) error { return platform.ValidationErr(err, FieldName) }
