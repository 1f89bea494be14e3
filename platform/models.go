package platform

import (
	"encoding/json"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/glmkit/glmkit/zhipuai"
)

// ModelKind says which API a model answers: chat, vision (chat with
// images), embedding, image generation or rerank.
type ModelKind string

// Model kinds.
const (
	KindChat      ModelKind = "chat"
	KindVision    ModelKind = "vision"
	KindEmbedding ModelKind = "embedding"
	KindImage     ModelKind = "image"
	KindRerank    ModelKind = "rerank"
)

// Capabilities say what a chat model takes beyond text, for the models
// list (docs/v4.md §11).
type Capabilities struct {
	// Thinking: the model reasons before answering (reasoning_content)
	// and takes the "thinking" switch.
	Thinking bool
	// Tools: the model calls function tools.
	Tools bool
	// Vision: the model reads images (KindVision).
	Vision bool
}

// ModelInfo describes one model as clients see it.
type ModelInfo struct {
	// ID is the client-facing name, e.g. "glm-4".
	ID   string
	Kind ModelKind
	// ContextTokens is the context window used for the 1261 check (prompt
	// estimate + max_tokens must fit). For embedding models it is the
	// per-input limit. 0 = unknown (no check).
	ContextTokens int
	// MaxOutput is the largest max_tokens accepted (0 = unknown).
	MaxOutput int
	// Dimensions are the allowed embedding sizes; the first is the default.
	Dimensions []int
	OwnedBy    string
	Caps       Capabilities
}

// DefaultDimensions is the vector size used when a request names none
// (0 for models that are not embedding models).
func (m ModelInfo) DefaultDimensions() int {
	if len(m.Dimensions) == 0 {
		return 0
	}
	return m.Dimensions[0]
}

// AllowsDimensions reports whether d is one of the model's vector sizes.
func (m ModelInfo) AllowsDimensions(d int) bool {
	for _, x := range m.Dimensions {
		if x == d {
			return true
		}
	}
	return false
}

// Chat reports whether the model answers /chat/completions.
func (m ModelInfo) Chat() bool { return m.Kind == KindChat || m.Kind == KindVision }

// ReserveOutput is the completion cap a request is metered for before the
// model answers: the request's max_tokens, else the model's MaxOutput,
// else the documented default max_tokens (docs/v4.md §3). Every caller (sync,
// stream, async task) reserves by this one rule, so the same body costs
// the same reservation whichever way it arrives.
func (m ModelInfo) ReserveOutput(maxTokens *int) int {
	if maxTokens != nil {
		return *maxTokens
	}
	if m.MaxOutput > 0 {
		return m.MaxOutput
	}
	return DefaultMaxTokens
}

// MinUsefulOutput is the least completion a chat request is admitted with
// when the balance cannot pay for its whole ReserveOutput: a few words of
// an answer. The request is then served with its output bounded to what
// the balance pays, and refused with 1113 only when the balance cannot pay
// for the prompt and this much (docs/design.md §7).
const MinUsefulOutput = 8

// AdmitOutput is the least completion a request with this max_tokens is
// admitted with: MinUsefulOutput, or less when the request itself asks for
// less.
func (m ModelInfo) AdmitOutput(maxTokens *int) int {
	return min(m.ReserveOutput(maxTokens), MinUsefulOutput)
}

// ModelPrice is a model's list price as the models list shows it, in
// 1e-6 CNY (never a float, docs/design.md §3 "Money"): per 1K input,
// cached-input and output tokens, and per image. CachedInput 0 means cached
// tokens cost what input costs.
type ModelPrice struct {
	Input, CachedInput, Output, Image int64
}

// PriceLister answers the list price of a model (platform/billing's price
// table, read from memory); ok is false when the model has no price.
type PriceLister interface {
	ModelPrice(model string) (ModelPrice, bool)
}

// DefaultMaxTokens is the max_tokens the V4 API documents as its default
// (docs/v4.md §3), reserved for models whose MaxOutput is unknown.
const DefaultMaxTokens = 1024

// BuiltinEmbedModel is the client-facing name of the offline embedding
// model shipped in the binary (platform/upstream.Builtin). It is declared
// here, with the catalogue, so billing and the router name it without
// importing the adapter. It is lexical, not semantic: texts that share
// words or characters come out close, synonyms and translations do not.
const BuiltinEmbedModel = "glmkit-embed-ngram"

// OwnerZhipu is the owner shown for the Zhipu cloud's own models.
const OwnerZhipu = "zhipuai"

// zhipuModels is the catalogue of the Zhipu cloud's model names (docs/v4.md §7).
// Context sizes come from the launch table and current docs; where the docs
// disagree the smaller figure is used, so a 1261 from glm serve is never
// stricter than needed only by accident of a bigger guess. MaxOutput: docs/v4.md §3
// (glm-4 2024 docs: 8192; glm-4-plus current docs: 4K).
//
// The GLM-4.5 and later rows (docs/v4.md §11) are thinking models: GLM-4.5
// (and -air, -x, -airx, -flash) 128K context and 96K output; GLM-4.6, 4.7
// and 5 200K and 128K; GLM-4.5V 64K and 16K, GLM-4.6V 128K and 32K.
var zhipuModels = []ModelInfo{
	{ID: "glm-4", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 8192, Caps: tools},
	{ID: "glm-4-0520", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-4-plus", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-4-air", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-4-airx", Kind: KindChat, ContextTokens: 8_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-4-flash", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-4-long", Kind: KindChat, ContextTokens: 1_000_000, MaxOutput: 4095, Caps: tools},
	{ID: "glm-3-turbo", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 4095, Caps: tools},
	{ID: "charglm-3", Kind: KindChat, ContextTokens: 4_000, MaxOutput: 2048},
	{ID: "codegeex-4", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 32_000},
	{ID: "glm-4.5", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 96_000, Caps: thinkingTools},
	{ID: "glm-4.5-air", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 96_000, Caps: thinkingTools},
	{ID: "glm-4.5-airx", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 96_000, Caps: thinkingTools},
	{ID: "glm-4.5-x", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 96_000, Caps: thinkingTools},
	{ID: "glm-4.5-flash", Kind: KindChat, ContextTokens: 128_000, MaxOutput: 96_000, Caps: thinkingTools},
	{ID: "glm-4.6", Kind: KindChat, ContextTokens: 200_000, MaxOutput: 128_000, Caps: thinkingTools},
	{ID: "glm-4.7", Kind: KindChat, ContextTokens: 200_000, MaxOutput: 128_000, Caps: thinkingTools},
	{ID: "glm-4.7-flash", Kind: KindChat, ContextTokens: 200_000, MaxOutput: 128_000, Caps: thinkingTools},
	{ID: "glm-5", Kind: KindChat, ContextTokens: 200_000, MaxOutput: 128_000, Caps: thinkingTools},
	{ID: "glm-4v", Kind: KindVision, ContextTokens: 2_000, MaxOutput: 1024},
	{ID: "glm-4v-plus", Kind: KindVision, ContextTokens: 8_000, MaxOutput: 1024},
	{ID: "glm-4v-flash", Kind: KindVision, ContextTokens: 8_000, MaxOutput: 1024},
	{ID: "glm-4.5v", Kind: KindVision, ContextTokens: 64_000, MaxOutput: 16_000, Caps: Capabilities{Thinking: true}},
	{ID: "glm-4.6v", Kind: KindVision, ContextTokens: 128_000, MaxOutput: 32_000, Caps: thinkingTools},
	// Embedding limits are per input (docs/v4.md §5): embedding-2 512 tokens,
	// embedding-3 3072 tokens.
	{ID: "embedding-2", Kind: KindEmbedding, ContextTokens: 512, Dimensions: []int{1024}},
	{ID: "embedding-3", Kind: KindEmbedding, ContextTokens: 3072, Dimensions: []int{2048, 256, 512, 1024}},
	{ID: "cogview-3", Kind: KindImage},
	{ID: "cogview-3-plus", Kind: KindImage},
	{ID: "cogview-3-flash", Kind: KindImage},
	{ID: "cogview-4", Kind: KindImage},
	// The cloud's reranker takes a query and at most 128 documents of 4096
	// characters (docs/v4.md §11).
	{ID: "rerank", Kind: KindRerank},
}

var (
	tools         = Capabilities{Tools: true}
	thinkingTools = Capabilities{Thinking: true, Tools: true}
)

var zhipuByID = func() map[string]ModelInfo {
	m := make(map[string]ModelInfo, len(zhipuModels))
	for i := range zhipuModels {
		zhipuModels[i].OwnedBy = OwnerZhipu
		zhipuModels[i].Caps.Vision = zhipuModels[i].Kind == KindVision
		m[zhipuModels[i].ID] = zhipuModels[i]
	}
	return m
}()

// ZhipuModels returns the catalogue of the Zhipu cloud's models, sorted by
// ID. The slice is a copy; callers may change it.
func ZhipuModels() []ModelInfo {
	out := make([]ModelInfo, 0, len(zhipuModels))
	for _, m := range zhipuModels {
		m.Dimensions = append([]int(nil), m.Dimensions...)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LookupZhipuModel returns the catalogue entry of a Zhipu cloud model name.
func LookupZhipuModel(id string) (ModelInfo, bool) {
	m, ok := zhipuByID[id]
	if ok {
		m.Dimensions = append([]int(nil), m.Dimensions...)
	}
	return m, ok
}

// Fixed token estimates for parts the local estimate cannot read. An image
// costs about a thousand prompt tokens on GLM-4V (the docs/v4.md §4 example reply
// reports 1037 prompt tokens for one image and a short question); videos
// are counted at twice that.
const (
	imagePartTokens  = 1024
	videoPartTokens  = 2048
	perMessageTokens = 4 // role and separators
	replyPrimeTokens = 3 // the assistant turn the model is asked to start
)

// EstimateTokens is a conservative local estimate of the tokens of text,
// used for the 1261 check and for billing reservations (never for the bill
// itself, which uses the upstream's usage). CJK characters (and other wide
// scripts) count one token each, ASCII about four characters per token,
// other scripts two characters per token; the total is rounded up.
func EstimateTokens(text string) int {
	var wide, ascii, other int
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if isWide(r) {
			wide++
		} else {
			other++
		}
	}
	return wide + (ascii+3)/4 + (other+1)/2
}

// isWide reports runes that tokenizers of GLM-4 (and most others) encode at
// about one token each or more: CJK ideographs, kana, hangul, fullwidth
// forms and CJK punctuation, and symbols outside the BMP such as emoji.
func isWide(r rune) bool {
	switch {
	case r >= 0x3000 && r <= 0x30FF, // CJK punctuation, kana
		r >= 0xFF00 && r <= 0xFFEF, // fullwidth forms
		r >= 0xAC00 && r <= 0xD7AF, // hangul syllables
		r > 0xFFFF:
		return true
	}
	return unicode.Is(unicode.Han, r)
}

// EstimateChatPromptTokens estimates the prompt tokens of a chat request:
// every message's text, tool calls and a small per-message overhead, the
// tool definitions (they are tokenized into the prompt and billed, docs/v4.md §3)
// and a fixed estimate per image or video part.
func EstimateChatPromptTokens(req *zhipuai.ChatCompletionRequest) int {
	if req == nil {
		return 0
	}
	n := replyPrimeTokens
	for i := range req.Messages {
		m := &req.Messages[i]
		n += perMessageTokens
		if m.Content.Parts == nil {
			n += EstimateTokens(m.Content.Text)
		}
		for _, p := range m.Content.Parts {
			switch p.Type {
			case zhipuai.PartImageURL:
				n += imagePartTokens
			case zhipuai.PartVideoURL:
				n += videoPartTokens
			default:
				n += EstimateTokens(p.Text)
			}
		}
		for _, tc := range m.ToolCalls {
			n += EstimateTokens(tc.Function.Name) + EstimateTokens(tc.Function.Arguments) + perMessageTokens
		}
	}
	if len(req.Tools) > 0 {
		if b, err := json.Marshal(req.Tools); err == nil {
			n += EstimateTokens(string(b))
		}
	}
	if req.Meta != nil {
		n += EstimateTokens(req.Meta.UserInfo) + EstimateTokens(req.Meta.BotInfo) +
			EstimateTokens(req.Meta.BotName) + EstimateTokens(req.Meta.UserName)
	}
	return n
}
