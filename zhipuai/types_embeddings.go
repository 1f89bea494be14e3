package zhipuai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// Embedding wire types (docs/v4.md §5).

// Encoding formats of an embedding request.
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

// EmbeddingRequest is the body of POST /embeddings.
type EmbeddingRequest struct {
	Model string         `json:"model"`
	Input EmbeddingInput `json:"input"`
	// Dimensions is 256, 512, 1024 or 2048 for embedding-3 (default 2048);
	// embedding-2 is fixed at 1024.
	Dimensions *int `json:"dimensions,omitempty"`
	// EncodingFormat "base64" asks for little-endian float32 bytes in base64
	// (the OpenAI Node SDK's default); the SDK decodes either form.
	EncodingFormat     string              `json:"encoding_format,omitempty"`
	User               string              `json:"user,omitempty"`
	UserID             string              `json:"user_id,omitempty"`
	RequestID          string              `json:"request_id,omitempty"`
	SensitiveWordCheck *SensitiveWordCheck `json:"sensitive_word_check,omitempty"`
}

// EmbeddingInput is "input": one text encodes as a JSON string (as the
// tutorial sends it), several as an array. Decoding accepts both.
type EmbeddingInput []string

// MarshalJSON writes a string for one text and an array otherwise.
func (in EmbeddingInput) MarshalJSON() ([]byte, error) {
	if len(in) == 1 {
		return json.Marshal(in[0])
	}
	return json.Marshal([]string(in))
}

// UnmarshalJSON accepts null, a string or an array of strings. Token arrays
// (allowed by the Python type) are rejected with a clear message.
func (in *EmbeddingInput) UnmarshalJSON(b []byte) error {
	texts, err := stringOrList(b, "input")
	*in = texts
	return err
}

// EmbeddingResponse is the reply of POST /embeddings.
type EmbeddingResponse struct {
	Model  string      `json:"model"`
	Object string      `json:"object"`
	Data   []Embedding `json:"data"`
	Usage  Usage       `json:"usage"`
}

// Embedding is one vector of an EmbeddingResponse.
type Embedding struct {
	Index     int    `json:"index"`
	Object    string `json:"object"`
	Embedding Vector `json:"embedding"`

	// Raw, when not nil, is the vector as a server received it from its
	// upstream: a JSON array of RawDims finite numbers, relayed as those
	// bytes instead of decoded and written again (docs/v4.md §5);
	// Embedding is then nil. Neither field is part of the wire form:
	// encoding/json never sets them and never writes them.
	Raw     []byte `json:"-"`
	RawDims int    `json:"-"`
}

// MarshalJSON writes Raw as the vector when Raw holds it, so a reply a
// server relays as bytes encodes with encoding/json exactly as the decoded
// one would (a batch job's output line, a test) instead of as null.
func (e Embedding) MarshalJSON() ([]byte, error) {
	type plain Embedding // the fields, without this method
	if e.Raw == nil {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		Index     int             `json:"index"`
		Object    string          `json:"object"`
		Embedding json.RawMessage `json:"embedding"`
	}{e.Index, e.Object, e.Raw})
}

// Dims is the vector's length, whichever form holds it.
func (e *Embedding) Dims() int {
	if e.Raw != nil {
		return e.RawDims
	}
	return len(e.Embedding)
}

// Floats is the vector as numbers, decoding Raw when that is the form
// held.
func (e *Embedding) Floats() (Vector, error) {
	if e.Raw == nil {
		return e.Embedding, nil
	}
	var v Vector
	if err := json.Unmarshal(e.Raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Vector is an embedding. It decodes from a JSON array of numbers or from a
// base64 string of little-endian float32 values, so callers never see the
// encoding they asked for.
type Vector []float64

// UnmarshalJSON accepts both encodings.
func (v *Vector) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		out, err := DecodeBase64Vector(s)
		if err != nil {
			return err
		}
		*v = out
		return nil
	}
	var f []float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*v = f
	return nil
}

// MarshalJSON writes the vector as a JSON array, in the shortest form that
// reads back to the same float64.
func (v Vector) MarshalJSON() ([]byte, error) {
	buf := make([]byte, 0, len(v)*12+2)
	buf = append(buf, '[')
	for i, f := range v {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("embedding holds a non-finite value")
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
	}
	return append(buf, ']'), nil
}

// EncodeBase64Vector encodes v as base64 of little-endian float32 values,
// the form the OpenAI SDKs ask for with encoding_format "base64".
func EncodeBase64Vector(v []float64) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(f)))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// DecodeBase64Vector is the inverse of EncodeBase64Vector.
func DecodeBase64Vector(s string) ([]float64, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("embedding is not valid base64")
	}
	if len(raw)%4 != 0 {
		return nil, errors.New("base64 embedding length is not a multiple of 4 bytes")
	}
	out := make([]float64, len(raw)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out, nil
}
