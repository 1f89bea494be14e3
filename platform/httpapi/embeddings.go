package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleEmbeddings serves POST /embeddings (docs/v4.md §5). Vectors are floats,
// or base64 of little-endian float32 when encoding_format is "base64" —
// the OpenAI Node SDK's default, which decodes floats into garbage
// (docs/v4.md §10).
func (s *Server) handleEmbeddings(x *exchange) {
	var req zhipuai.EmbeddingRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	_, prompt, err := s.validateEmbeddings(&req)
	if err != nil {
		x.fail(err)
		return
	}
	// The call bills input only (docs/v4.md §7) and says so in resp.Usage.
	// The reply's vectors may be the upstream's bytes in a lent buffer
	// (platform.ReplyLease): given back once encoded into this reply.
	var lease platform.ReplyLease
	resp, err := x.call.Embeddings(platform.WithReplyLease(x.r.Context(), &lease), &req, prompt)
	if err != nil {
		x.fail(err)
		return
	}
	if resp.Object == "" {
		resp.Object = "list"
	}
	if resp.Model == "" {
		resp.Model = req.Model
	}
	bp := replyBufs.Get().(*[]byte)
	body, err := encodeEmbeddings((*bp)[:0], resp, req.EncodingFormat == zhipuai.EncodingBase64)
	lease.Return()
	if err == nil {
		writeJSONBytes(x.w, http.StatusOK, body)
	}
	// The writer has copied or sent the body: its buffer serves the next
	// reply, unless one large batch made it too big to keep.
	if cap(body) <= maxPooledReply {
		*bp = body[:0]
		replyBufs.Put(bp)
	}
	if err != nil {
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", err))
		return
	}
	x.ok(http.StatusOK)
}

// replyBufs holds the buffers embeddings replies are written into: a
// reply is tens of KB, allocated and cleared per request before
// (docs/design.md §6).
var replyBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledReply is the largest reply buffer replyBufs keeps.
const maxPooledReply = 1 << 20

// encodeEmbeddings appends the reply to dst in one pass: vectors
// as floats — the upstream's bytes when the backend kept them
// (zhipuai.Embedding.Raw), else the shortest form that reads back to the
// same float64 (as zhipuai.Vector encodes them) — or as base64 of
// little-endian float32.
// encoding/json would call Vector's encoder and then scan its output
// again to check and compact it, most of the CPU of an embeddings call.
// Keys and their order are those of zhipuai.EmbeddingResponse.
func encodeEmbeddings(dst []byte, resp *zhipuai.EmbeddingResponse, b64 bool) ([]byte, error) {
	n := 0
	for i := range resp.Data {
		if d := &resp.Data[i]; b64 {
			n += 64 + d.Dims()*6
		} else {
			n += 64 + len(d.Raw) + len(d.Embedding)*24
		}
	}
	buf := slices.Grow(dst, 256+n)
	buf = append(buf, `{"model":`...)
	buf = jsonscan.AppendString(buf, resp.Model)
	buf = append(buf, `,"object":`...)
	buf = jsonscan.AppendString(buf, resp.Object)
	buf = append(buf, `,"data":[`...)
	var f32 []byte
	for i := range resp.Data {
		d := &resp.Data[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"index":`...)
		buf = strconv.AppendInt(buf, int64(d.Index), 10)
		buf = append(buf, `,"object":"embedding","embedding":`...)
		if b64 {
			f32 = f32[:0]
			if d.Raw != nil {
				var err error
				if f32, err = appendRawFloat32(f32, d.Raw); err != nil {
					return nil, err
				}
			}
			for _, f := range d.Embedding {
				f32 = binary.LittleEndian.AppendUint32(f32, math.Float32bits(float32(f)))
			}
			buf = append(buf, '"')
			buf = base64.StdEncoding.AppendEncode(buf, f32)
			buf = append(buf, `"}`...)
			continue
		}
		if d.Raw != nil {
			// The upstream's own bytes: the same numbers a client would
			// read from them written again (shortest form reads back to
			// the same float64), without parsing or formatting each.
			buf = append(buf, d.Raw...)
			buf = append(buf, '}')
			continue
		}
		buf = append(buf, '[')
		for j, f := range d.Embedding {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, errors.New("embedding holds a non-finite value")
			}
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
		}
		buf = append(buf, "]}"...)
	}
	usage, err := json.Marshal(resp.Usage)
	if err != nil {
		return nil, err
	}
	buf = append(buf, `],"usage":`...)
	buf = append(buf, usage...)
	return append(buf, '}'), nil
}

// appendRawFloat32 appends, little-endian, the float32 of each number of
// raw, a JSON array of finite numbers (zhipuai.Embedding.Raw): parsed as
// float64 and then narrowed, as the float path does.
func appendRawFloat32(dst, raw []byte) ([]byte, error) {
	i := bytes.IndexByte(raw, '[') + 1
	for i < len(raw) {
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r' || raw[i] == ',') {
			i++
		}
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		j := i
		for j < len(raw) && raw[j] != ',' && raw[j] != ']' && raw[j] != ' ' && raw[j] != '\t' && raw[j] != '\n' && raw[j] != '\r' {
			j++
		}
		f, err := strconv.ParseFloat(unsafe.String(&raw[i], j-i), 64)
		if err != nil {
			return nil, err
		}
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
		i = j
	}
	return dst, nil
}
