// Package readsized reads a body whose size is known, or well guessed,
// into one buffer of that size.
//
// bytes.Buffer.ReadFrom, used before, keeps 512 bytes (bytes.MinRead)
// free for every read, so a 300-byte chat body took an 896-byte
// allocation and a 16 KB embeddings reply an 18 KB one: per request, a
// kilobyte of garbage more than the body (docs/design.md §6).
package readsized

import (
	"errors"
	"io"
)

// ErrTooLarge is ReadAll's answer to a body longer than its limit.
var ErrTooLarge = errors.New("body larger than its limit")

// ReadAll reads r to EOF. size is the expected length: the buffer has
// room for size bytes and the one more that the read finding EOF needs,
// and grows as io.ReadAll's does only for a longer body. At most limit
// bytes are read; a longer body is ErrTooLarge. size <= 0 starts as
// io.ReadAll does.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 {
		size = 511
	}
	return readInto(make([]byte, 0, min(size, limit)+1), r, limit)
}

// readInto reads r to EOF after b's bytes, growing b when it is full.
func readInto(b []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		// Never ask for more than one byte past the limit.
		end := int64(cap(b))
		if end > limit+1 {
			end = limit + 1
		}
		k, err := r.Read(b[len(b):end])
		b = b[:len(b)+k]
		if int64(len(b)) > limit {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // as io.ReadAll grows
		}
	}
}

// ReadAllInto is ReadAll into dst's array when it has room for size bytes
// and one more (a buffer kept from an earlier read); otherwise, or for a
// longer body, it allocates as ReadAll does.
func ReadAllInto(dst []byte, r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 {
		size = 511
	}
	if int64(cap(dst)) < min(size, limit)+1 {
		dst = make([]byte, 0, min(size, limit)+1)
	}
	return readInto(dst[:0], r, limit)
}
