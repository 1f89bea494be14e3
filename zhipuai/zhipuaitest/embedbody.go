package zhipuaitest

import (
	"bytes"
	"fmt"
	"strconv"
)

// EmbeddingsBody is the body of an embeddings reply for model with one
// vector of dims numbers, written the way the cloud writes them (ten
// decimals, spread over (-0.1, 0.1)), and usage. The numbers are the same
// on every call: load tools and benchmarks that measure what a gateway
// does with a real-looking vector use it as a fixed upstream reply.
func EmbeddingsBody(model string, dims int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"model":%q,"object":"list","data":[{"index":0,"object":"embedding","embedding":[`, model)
	x := uint32(2463534242)
	for i := range dims {
		// xorshift: deterministic and cheap.
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat((float64(x)/(1<<32)-0.5)/5, 'f', 10, 64))
	}
	b.WriteString(`]}],"usage":{"prompt_tokens":7,"completion_tokens":0,"total_tokens":7}}`)
	return b.Bytes()
}
