package zhipuai

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Tokenizer and rerank wire types (docs/v4.md §11). The official Python SDKs
// have no methods for these two endpoints; the names here follow the
// endpoints and the cloud's documented bodies.

// TokenizerRequest is the body of POST /tokenizer: the messages (and tools)
// of a chat request, counted as the model would see them.
type TokenizerRequest struct {
	Model     string    `json:"model"`
	Messages  []Message `json:"messages"`
	Tools     []Tool    `json:"tools,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	UserID    string    `json:"user_id,omitempty"`
}

// TokenizerResponse is the reply of POST /tokenizer. Usage.PromptTokens is
// the count. Estimated is a glm serve addition: true when no backend of
// the model could count with the model's own tokenizer and the number is
// the server's local estimate (docs/v4.md §11).
type TokenizerResponse struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id,omitempty"`
	Created   int64  `json:"created"`
	Model     string `json:"model,omitempty"`
	Usage     Usage  `json:"usage"`
	Estimated bool   `json:"estimated,omitempty"`
}

// Rerank limits the cloud documents (docs/v4.md §11).
const (
	MaxRerankDocuments = 128
	MaxRerankChars     = 4096
)

// RerankRequest is the body of POST /rerank.
type RerankRequest struct {
	Model     string   `json:"model"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
	// TopN returns the n best results; 0 (the default) returns all.
	TopN *int `json:"top_n,omitempty"`
	// ReturnDocuments puts each document's text into its result.
	ReturnDocuments bool `json:"return_documents,omitempty"`
	// ReturnRawScores asks for the model's raw scores instead of
	// normalised ones, where the backend can give them.
	ReturnRawScores bool   `json:"return_raw_scores,omitempty"`
	RequestID       string `json:"request_id,omitempty"`
	UserID          string `json:"user_id,omitempty"`
}

// RerankResponse is the reply of POST /rerank: results best first.
type RerankResponse struct {
	ID        string         `json:"id"`
	RequestID string         `json:"request_id,omitempty"`
	Created   int64          `json:"created"`
	Model     string         `json:"model,omitempty"`
	Results   []RerankResult `json:"results"`
	Usage     Usage          `json:"usage"`
}

// RerankResult scores the document at Index of the request.
type RerankResult struct {
	Index          int     `json:"index"`
	RelevanceScore float64 `json:"relevance_score"`
	// Document is the text, only with return_documents.
	Document string `json:"document,omitempty"`
}

// ValidateTokenizerRequest checks a tokenizer body with the chat rules for
// its messages and tools (one validator for both sides, docs/design.md §3).
func ValidateTokenizerRequest(r *TokenizerRequest) error {
	if r == nil {
		return nilRequest()
	}
	if err := validateCommon(r.Model, r.RequestID, r.UserID); err != nil {
		return err
	}
	if len(r.Messages) == 0 {
		return missing("messages", "at least one message is required")
	}
	for i := range r.Messages {
		if err := validateMessage(i, &r.Messages[i]); err != nil {
			return err
		}
	}
	for i := range r.Tools {
		if err := validateTool(i, &r.Tools[i]); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRerankRequest checks a rerank body against the documented limits:
// a query and 1–128 documents, none blank or longer than 4096 characters,
// and top_n not negative.
func ValidateRerankRequest(r *RerankRequest) error {
	if r == nil {
		return nilRequest()
	}
	if err := validateCommon(r.Model, r.RequestID, r.UserID); err != nil {
		return err
	}
	if err := rerankText("query", r.Query); err != nil {
		return err
	}
	switch n := len(r.Documents); {
	case r.Documents == nil:
		return missing("documents", "is required")
	case n == 0 || n > MaxRerankDocuments:
		return invalid("documents", "must hold 1 to %d documents, got %d", MaxRerankDocuments, n)
	}
	for i, d := range r.Documents {
		if err := rerankText(fmt.Sprintf("documents[%d]", i), d); err != nil {
			return err
		}
	}
	if r.TopN != nil && *r.TopN < 0 {
		return invalid("top_n", "must not be negative, got %d", *r.TopN)
	}
	return nil
}

func rerankText(field, s string) error {
	if s == "" {
		return missing(field, "is required")
	}
	if strings.TrimSpace(s) == "" {
		return invalid(field, "is blank")
	}
	if n := utf8.RuneCountInString(s); n > MaxRerankChars {
		return invalid(field, "must be at most %d characters, got %d", MaxRerankChars, n)
	}
	return nil
}
