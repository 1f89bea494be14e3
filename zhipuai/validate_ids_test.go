package zhipuai

import (
	"errors"
	"strings"
	"testing"
)

// The bookkeeping strings are bounded by every validator alike: chat,
// embeddings and images refuse the same request_id, user_id and model.
func TestBoundedIDsInEveryValidator(t *testing.T) {
	validators := map[string]func(model, requestID, userID string) error{
		"chat": func(m, r, u string) error {
			return ValidateChatRequest(&ChatCompletionRequest{Model: m, RequestID: r, UserID: u, Messages: []Message{UserMessage("hi")}})
		},
		"embeddings": func(m, r, u string) error {
			return ValidateEmbeddingRequest(&EmbeddingRequest{Model: m, RequestID: r, UserID: u, Input: EmbeddingInput{"hi"}})
		},
		"images": func(m, r, u string) error {
			return ValidateImageRequest(&ImageRequest{Model: m, RequestID: r, UserID: u, Prompt: "a cat"})
		},
	}
	for _, tc := range []struct {
		name                    string
		model, requestID, userI string
		field                   string // "" = accepted
	}{
		{"ordinary ids", "glm-4", "req-8239375684858666781", "user_12345", ""},
		{"uuid request id", "glm-4", "3f1c9a52-6a1e-4c2b-9d1f-2b9a0c7e5d11", "", ""},
		{"request id of 128", "glm-4", strings.Repeat("r", 128), "", ""},
		{"request id of 129", "glm-4", strings.Repeat("r", 129), "", "request_id"},
		{"request id of a megabyte", "glm-4", strings.Repeat("r", 1<<20), "", "request_id"},
		{"request id with a space", "glm-4", "req 1", "", "request_id"},
		{"request id with a newline", "glm-4", "req\n1", "", "request_id"},
		{"request id with a NUL", "glm-4", "req\x001", "", "request_id"},
		{"request id not ASCII", "glm-4", "请求1", "", "request_id"},
		{"chinese user id", "glm-4", "", "用户一二三四", ""},
		{"user id of 5", "glm-4", "", "abcde", "user_id"},
		{"user id of 128 characters", "glm-4", "", strings.Repeat("用", 128), ""},
		{"user id of 129 characters", "glm-4", "", strings.Repeat("用", 129), "user_id"},
		{"user id with a control character", "glm-4", "", "user\x1b[31m", "user_id"},
		{"user id not UTF-8", "glm-4", "", "user\xff\xfe\xfd", "user_id"},
		{"model of 128", strings.Repeat("m", 128), "", "", ""},
		{"model of 129", strings.Repeat("m", 129), "", "", "model"},
	} {
		for name, validate := range validators {
			err := validate(tc.model, tc.requestID, tc.userI)
			if tc.field == "" {
				if err != nil {
					t.Errorf("%s, %s: got %v, want accepted", tc.name, name, err)
				}
				continue
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field || ve.Kind != InvalidField {
				t.Errorf("%s, %s: got %v, want an invalid %s (1214)", tc.name, name, err, tc.field)
				continue
			}
			if len(ve.Reason) > 200 {
				t.Errorf("%s, %s: reason of %d bytes, want a short one that does not repeat the value", tc.name, name, len(ve.Reason))
			}
		}
	}
}

func TestValidateImageRequest(t *testing.T) {
	for _, tc := range []struct {
		req   *ImageRequest
		field string
		kind  ValidationKind
	}{
		{&ImageRequest{Prompt: "x"}, "model", MissingField},
		{&ImageRequest{Model: "cogview-3", Prompt: "  "}, "prompt", MissingField},
		{&ImageRequest{Model: "cogview-3", Prompt: "x", N: Ptr(0)}, "n", InvalidField},
		{&ImageRequest{Model: "cogview-3", Prompt: "x", N: Ptr(11)}, "n", InvalidField},
	} {
		var ve *ValidationError
		if err := ValidateImageRequest(tc.req); !errors.As(err, &ve) || ve.Field != tc.field || ve.Kind != tc.kind {
			t.Errorf("%+v: got %v, want %s %s", tc.req, err, tc.kind, tc.field)
		}
	}
	if err := ValidateImageRequest(&ImageRequest{Model: "cogview-3", Prompt: "x", N: Ptr(10)}); err != nil {
		t.Errorf("n 10: got %v, want accepted", err)
	}
}
