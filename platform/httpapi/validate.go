package httpapi

import (
	"fmt"
	"strings"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// Validation answers every bad input with the V4 code that names the
// problem (docs/v4.md §6): 1213 a required field is missing, 1214 a field has a
// value the API does not accept, 1215 two fields exclude each other, 1211
// the model does not exist, 1212 the model exists but does not answer this
// API, 1261 the prompt does not fit the model's context. The rules of the
// chat body itself live in zhipuai.ValidateChatRequest, shared with the
// SDK; this file adds what depends on the model table.

// maxEmbeddingInputs is the per-request cap of embedding-3 (docs/v4.md §5).
const maxEmbeddingInputs = 64

func missing(format string, args ...any) error {
	return platform.Errorf(platform.CodeMissingField, format, args...)
}

func invalid(format string, args ...any) error {
	return platform.Errorf(platform.CodeInvalidField, format, args...)
}

// lookupModel resolves a model name for an API that needs one of kinds.
func (s *Server) lookupModel(name string, api string, kinds ...platform.ModelKind) (platform.ModelInfo, error) {
	if name == "" {
		return platform.ModelInfo{}, missing("model is required")
	}
	// The SDK's bound (zhipuai.MaxModelLen), checked before the table so a
	// huge name is refused for its size, as the SDK refuses it; messages
	// quote a name shortened (envelope.Quote), never the whole of it.
	if len(name) > zhipuai.MaxModelLen {
		return platform.ModelInfo{}, invalid("model: must be at most %d bytes, got %d", zhipuai.MaxModelLen, len(name))
	}
	info, ok := s.catalogue.Model(name)
	if !ok {
		return platform.ModelInfo{}, platform.Errorf(platform.CodeUnknownModel, "model %s does not exist on this server; GET /models lists the models served", v4.Quote(name))
	}
	for _, k := range kinds {
		if info.Kind == k {
			return info, nil
		}
	}
	return platform.ModelInfo{}, platform.Errorf(platform.CodeUnsupportedMode, "model %s is a %s model and does not answer %s", v4.Quote(name), info.Kind, api)
}

// validateChat checks a chat request (docs/v4.md §3): first the model against
// the model table (1213/1211/1212), then the SDK's own validator, so a
// request the SDK would refuse to send is refused here with the same field,
// then what only the model table knows: images and video need a vision
// model, and max_tokens may not exceed what the model can write.
// zhipuai.ValidateChatRequest explains the sampling ranges; backends clamp
// towards an upstream that is stricter (docs/peers.md §4 item 3).
func (s *Server) validateChat(req *zhipuai.ChatCompletionRequest) (platform.ModelInfo, error) {
	info, err := s.lookupModel(req.Model, "chat completions", platform.KindChat, platform.KindVision)
	if err != nil {
		return info, err
	}
	if err := zhipuai.ValidateChatRequest(req); err != nil {
		return info, validationError(err)
	}
	if info.Kind != platform.KindVision {
		for i := range req.Messages {
			for j, p := range req.Messages[i].Content.Parts {
				if p.Type == zhipuai.PartImageURL || p.Type == zhipuai.PartVideoURL {
					return info, invalid("messages[%d].content[%d]: model %q does not accept images or video; use a vision model such as glm-4v", i, j, req.Model)
				}
			}
		}
	}
	if mt := req.MaxTokens; mt != nil && info.MaxOutput > 0 && *mt > info.MaxOutput {
		return info, invalid("max_tokens %d exceeds the %d tokens %s can write", *mt, info.MaxOutput, req.Model)
	}
	return info, nil
}

// validationError answers a *zhipuai.ValidationError with the V4 code of
// its kind (platform.ValidationErr).
func validationError(err error) error { return platform.ValidationErr(err, nil) }

// checkContext is the 1261 check: the prompt estimate plus the asked
// max_tokens must fit the model's context.
func checkContext(info platform.ModelInfo, prompt int, maxTokens *int) error {
	if info.ContextTokens <= 0 {
		return nil
	}
	need := prompt
	if maxTokens != nil {
		need += *maxTokens
	}
	if need > info.ContextTokens {
		return platform.Errorf(platform.CodePromptTooLong,
			"prompt too long: about %d tokens (with max_tokens) exceed the %d-token context of %s", need, info.ContextTokens, info.ID)
	}
	return nil
}

// validateEmbeddings checks an embeddings request (docs/v4.md §5) and returns
// the prompt estimate.
func (s *Server) validateEmbeddings(req *zhipuai.EmbeddingRequest) (platform.ModelInfo, int, error) {
	info, err := s.lookupModel(req.Model, "embeddings", platform.KindEmbedding)
	if err != nil {
		return info, 0, err
	}
	if err := zhipuai.ValidateEmbeddingRequest(req); err != nil {
		return info, 0, validationError(err)
	}
	if len(req.Input) == 0 {
		return info, 0, missing("input is required: a string or an array of strings")
	}
	if len(req.Input) > maxEmbeddingInputs {
		return info, 0, invalid("input holds %d texts; at most %d per request", len(req.Input), maxEmbeddingInputs)
	}
	total := 0
	for i, in := range req.Input {
		if strings.TrimSpace(in) == "" {
			return info, 0, invalid("input[%d] is empty", i)
		}
		n := platform.EstimateTokens(in)
		if info.ContextTokens > 0 && n > info.ContextTokens {
			return info, 0, platform.Errorf(platform.CodePromptTooLong,
				"input[%d] is about %d tokens; %s takes at most %d per text", i, n, req.Model, info.ContextTokens)
		}
		total += n
	}
	if req.Dimensions != nil && !info.AllowsDimensions(*req.Dimensions) {
		return info, 0, invalid("dimensions %d not supported by %s; use one of %s", *req.Dimensions, req.Model, dims(info.Dimensions))
	}
	switch req.EncodingFormat {
	case "", zhipuai.EncodingFloat, zhipuai.EncodingBase64:
	default:
		return info, 0, invalid(`encoding_format must be "float" or "base64"`)
	}
	return info, total, nil
}

func dims(d []int) string {
	parts := make([]string, len(d))
	for i, v := range d {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

// validateImages checks an image generation request (docs/v4.md §5).
func (s *Server) validateImages(req *zhipuai.ImageRequest) (platform.ModelInfo, error) {
	info, err := s.lookupModel(req.Model, "image generation", platform.KindImage)
	if err != nil {
		return info, err
	}
	if err := zhipuai.ValidateImageRequest(req); err != nil {
		return info, validationError(err)
	}
	return info, nil
}
