package upstream

import (
	"context"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// BuiltinDimensions are the vector sizes the builtin model produces; the
// first is the default. Feature hashing works for any size, these match the
// sizes V4 clients know (embedding-2: 1024; embedding-3: 256–2048).
var BuiltinDimensions = []int{1024, 256, 512, 2048}

// Builtin is the offline embedding backend; it implements only
// platform.EmbeddingBackend: hashed character and word
// n-grams, CJK-aware, signed feature hashing into d buckets, sublinear term
// weights, L2-normalised. Deterministic and allocation-light; it needs no
// model file and no network, so glm serve and the RAG cookbook work offline.
type Builtin struct {
	name string
}

// NewBuiltin returns the builtin backend.
func NewBuiltin() *Builtin { return &Builtin{name: "builtin"} }

// BuiltinModelInfo describes the builtin model for the catalogue.
func BuiltinModelInfo() platform.ModelInfo {
	return platform.ModelInfo{
		ID: platform.BuiltinEmbedModel, Kind: platform.KindEmbedding,
		ContextTokens: 8192,
		Dimensions:    append([]int(nil), BuiltinDimensions...),
		OwnedBy:       "glmkit",
	}
}

// Name implements platform.Backend.
func (b *Builtin) Name() string { return b.name }

// Embeddings implements platform.EmbeddingBackend.
func (b *Builtin) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	dims := BuiltinDimensions[0]
	if req.Dimensions != nil {
		dims = *req.Dimensions
		ok := false
		for _, d := range BuiltinDimensions {
			ok = ok || d == dims
		}
		if !ok {
			return nil, platform.Errorf(platform.CodeInvalidField,
				"dimensions %d is not supported by %s (use 256, 512, 1024 or 2048)", dims, req.Model)
		}
	}
	out := &zhipuai.EmbeddingResponse{Model: req.Model, Object: "list", Data: make([]zhipuai.Embedding, len(req.Input))}
	tokens := 0
	for i, text := range req.Input {
		if err := ctx.Err(); err != nil {
			return nil, platform.Wrap(platform.CodeNetwork, "request cancelled", err)
		}
		out.Data[i] = zhipuai.Embedding{Index: i, Object: "embedding", Embedding: EmbedNgram(text, dims)}
		tokens += platform.EstimateTokens(text)
	}
	out.Usage = zhipuai.Usage{PromptTokens: tokens, TotalTokens: tokens}
	return out, nil
}

// Feature weights. Whole words carry most of the meaning in Latin text;
// their character trigrams let "embeddings" still meet "embedding". In CJK
// text (no spaces) character bigrams stand in for words, unigrams and
// trigrams add recall and precision.
const (
	wWord      = 1.0
	wWordPair  = 0.5
	wTrigram   = 0.35
	wCJKUni    = 0.5
	wCJKBi     = 1.0
	wCJKTri    = 0.5
	wStopScale = 0.15 // function words still count, a little
)

// EmbedNgram embeds text into a dims-long L2-normalised vector (see
// Builtin). The same text always gives the same vector.
func EmbedNgram(text string, dims int) zhipuai.Vector {
	acc := make([]float64, dims)
	f := featurizer{acc: acc, dims: uint64(dims)}
	f.run(text)
	// Sublinear term weighting: a word repeated ten times should not drown
	// the rest (sign-preserving square root per bucket).
	var norm float64
	for i, v := range acc {
		if v != 0 {
			v = math.Copysign(math.Sqrt(math.Abs(v)), v)
			acc[i] = v
			norm += v * v
		}
	}
	if norm > 0 {
		inv := 1 / math.Sqrt(norm)
		for i := range acc {
			acc[i] *= inv
		}
	}
	return acc
}

// featurizer walks normalised text once and adds each feature's signed
// weight straight into its bucket, so no feature strings are built.
type featurizer struct {
	acc  []float64
	dims uint64

	word     [64]rune // current Latin word
	wn       int
	prevWord uint64  // hash of the previous Latin word (0 = none)
	cjk      [3]rune // last CJK runes of the current run
	cn       int
}

// FNV-1a, 64 bit.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashRunes(seed byte, rs []rune) uint64 {
	h := uint64(fnvOffset)
	h = (h ^ uint64(seed)) * fnvPrime
	for _, r := range rs {
		// One rune is one FNV "octet": a wider alphabet, same mixing; add
		// scrambles the result further before it picks a bucket.
		h = (h ^ uint64(r)) * fnvPrime
	}
	return h
}

// add puts weight w at the bucket of feature hash h, signed by another bit
// of h so collisions cancel out on average (the "hashing trick").
func (f *featurizer) add(h uint64, w float64) {
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	if h&(1<<63) != 0 {
		w = -w
	}
	f.acc[h%f.dims] += w
}

func (f *featurizer) run(text string) {
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		r = foldRune(r)
		switch {
		case isCJK(r):
			f.endWord()
			f.cjkRune(r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			f.endCJK()
			if f.wn < len(f.word) {
				f.word[f.wn] = r
				f.wn++
			}
		default:
			f.endWord()
			f.endCJK()
			if !unicode.IsSpace(r) {
				f.prevWord = 0 // punctuation breaks word pairs
			}
		}
	}
	f.endWord()
	f.endCJK()
}

func (f *featurizer) endWord() {
	if f.wn == 0 {
		return
	}
	w := f.word[:f.wn]
	f.wn = 0
	scale := 1.0
	if isStopWord(w) {
		scale = wStopScale
	}
	h := hashRunes('w', w)
	f.add(h, wWord*scale)
	if f.prevWord != 0 {
		f.add(h^(f.prevWord*31), wWordPair*scale)
	}
	f.prevWord = h
	if scale < 1 || len(w) < 4 {
		return
	}
	// Character trigrams of the word padded with boundaries: "<em", "emb", …
	var buf [66]rune
	buf[0] = '<'
	copy(buf[1:], w)
	buf[len(w)+1] = '>'
	padded := buf[:len(w)+2]
	for j := 0; j+3 <= len(padded); j++ {
		f.add(hashRunes('t', padded[j:j+3]), wTrigram)
	}
}

func (f *featurizer) cjkRune(r rune) {
	f.prevWord = 0
	if f.cn < 3 {
		f.cjk[f.cn] = r
		f.cn++
	} else {
		f.cjk[0], f.cjk[1], f.cjk[2] = f.cjk[1], f.cjk[2], r
	}
	stop := isCJKStop(r)
	uni := wCJKUni
	if stop {
		uni *= wStopScale
	}
	f.add(hashRunes('u', f.cjk[f.cn-1:f.cn]), uni)
	if f.cn >= 2 {
		bi := wCJKBi
		if stop && isCJKStop(f.cjk[f.cn-2]) {
			bi *= wStopScale
		}
		f.add(hashRunes('b', f.cjk[f.cn-2:f.cn]), bi)
	}
	if f.cn >= 3 {
		f.add(hashRunes('c', f.cjk[:3]), wCJKTri)
	}
}

func (f *featurizer) endCJK() { f.cn = 0 }

// foldRune lower-cases and maps fullwidth ASCII (Ａ, ０, ！) to ASCII, so
// text typed with a Chinese input method matches text typed without.
func foldRune(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E {
		r -= 0xFEE0
	}
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(r)
}

// isCJK reports ideographs, kana and hangul: scripts written without spaces,
// embedded character by character.
func isCJK(r rune) bool {
	if r < 0x2E80 {
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

var englishStop = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range []string{
		"a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "for", "by", "with",
		"from", "as", "is", "are", "was", "were", "be", "been", "it", "its", "this", "that",
		"these", "those", "do", "does", "did", "how", "what", "which", "who", "when", "where",
		"why", "can", "i", "you", "we", "they", "he", "she", "my", "your", "our", "their",
		"me", "about", "into", "than", "then", "there", "so", "if", "not", "no", "will",
		"would", "should", "could", "has", "have", "had", "also", "but", "all", "any",
	} {
		m[w] = true
	}
	return m
}()

func isStopWord(w []rune) bool {
	if len(w) > 6 {
		return false
	}
	var buf [6]byte
	for i, r := range w {
		if r >= utf8.RuneSelf {
			return false
		}
		buf[i] = byte(r)
	}
	return englishStop[string(buf[:len(w)])]
}

// isCJKStop reports very common Chinese function characters.
func isCJKStop(r rune) bool {
	switch r {
	case '的', '了', '是', '在', '和', '与', '或', '也', '就', '都', '而', '及', '之',
		'吗', '呢', '吧', '啊', '么', '什', '怎', '如', '何', '我', '你', '他', '她', '它',
		'们', '这', '那', '有', '个', '为', '对', '被', '把', '从', '中', '上', '下', '不':
		return true
	}
	return false
}
