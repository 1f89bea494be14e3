package zhipuai

// Image generation wire types (docs/v4.md §5).

// ImageRequest is the body of POST /images/generations (CogView).
type ImageRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	// Size such as "1024x1024" (cogview-3-plus sizes, docs/v4.md §5).
	Size               string              `json:"size,omitempty"`
	Quality            string              `json:"quality,omitempty"`
	N                  *int                `json:"n,omitempty"`
	ResponseFormat     string              `json:"response_format,omitempty"`
	Style              string              `json:"style,omitempty"`
	User               string              `json:"user,omitempty"`
	UserID             string              `json:"user_id,omitempty"`
	RequestID          string              `json:"request_id,omitempty"`
	SensitiveWordCheck *SensitiveWordCheck `json:"sensitive_word_check,omitempty"`
}

// ImagesResponse is the reply of POST /images/generations.
type ImagesResponse struct {
	Created int64   `json:"created"`
	Data    []Image `json:"data"`
}

// Image is one generated image; URL is absolute.
type Image struct {
	URL           string `json:"url,omitempty"`
	B64JSON       string `json:"b64_json,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}
