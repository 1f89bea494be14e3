package upstream

import (
	"encoding/json"
	"strconv"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/zhipuai"
)

// encodeEmbeddingRequest writes req exactly as json.Marshal does — the
// same bytes reach the upstream — without reflection: encoding/json
// called EmbeddingInput's MarshalJSON and then scanned its output again,
// ~2 % of glm serve's CPU on an embeddings request (docs/design.md §6).
// A request with sensitive_word_check (rare) is json.Marshal's. The key
// order is zhipuai.EmbeddingRequest's, checked against json.Marshal by
// TestEncodeEmbeddingRequestSameAsJSON and its fuzz target.
func encodeEmbeddingRequest(req *zhipuai.EmbeddingRequest) ([]byte, error) {
	if req.SensitiveWordCheck != nil {
		return json.Marshal(req)
	}
	n := 96 + len(req.Model) + len(req.EncodingFormat) + len(req.User) + len(req.UserID) + len(req.RequestID)
	for _, s := range req.Input {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"model":`...)
	b = jsonscan.AppendString(b, req.Model)
	b = append(b, `,"input":`...)
	switch in := req.Input; {
	case in == nil:
		b = append(b, "null"...)
	case len(in) == 1: // one text is a string (EmbeddingInput.MarshalJSON)
		b = jsonscan.AppendString(b, in[0])
	default:
		b = append(b, '[')
		for i, s := range in {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, s)
		}
		b = append(b, ']')
	}
	if req.Dimensions != nil {
		b = append(b, `,"dimensions":`...)
		b = strconv.AppendInt(b, int64(*req.Dimensions), 10)
	}
	for _, f := range [...]struct{ key, v string }{
		{`,"encoding_format":`, req.EncodingFormat},
		{`,"user":`, req.User},
		{`,"user_id":`, req.UserID},
		{`,"request_id":`, req.RequestID},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = jsonscan.AppendString(b, f.v)
		}
	}
	return append(b, '}'), nil
}
