package zhipuai

// ModelList is the reply of GET /models (OpenAI shape; glm serve lists the
// models it serves).
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// Model is one entry of ModelList. The fields after OwnedBy are glm serve
// additions (docs/v4.md §11); the cloud and engines leave them out.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`

	// Kind is chat, vision, embedding, image or rerank.
	Kind string `json:"kind,omitempty"`
	// ContextWindow is the context in tokens (for embedding models, per
	// input); MaxOutputTokens the largest max_tokens. 0: unknown.
	ContextWindow   int                `json:"context_window,omitempty"`
	MaxOutputTokens int                `json:"max_output_tokens,omitempty"`
	Capabilities    *ModelCapabilities `json:"capabilities,omitempty"`
	Pricing         *ModelPricing      `json:"pricing,omitempty"`
}

// ModelCapabilities say what a chat model takes beyond text.
type ModelCapabilities struct {
	Thinking bool `json:"thinking"`
	Tools    bool `json:"tools"`
	Vision   bool `json:"vision"`
}

// ModelPricing is a model's list price as exact decimal strings of CNY
// (never floats): per 1K input, cached-input and output tokens, and per
// image; a price the model does not have is left out.
type ModelPricing struct {
	Currency    string `json:"currency"`
	Input       string `json:"input_per_1k_tokens,omitempty"`
	CachedInput string `json:"cached_input_per_1k_tokens,omitempty"`
	Output      string `json:"output_per_1k_tokens,omitempty"`
	Image       string `json:"per_image,omitempty"`
}
