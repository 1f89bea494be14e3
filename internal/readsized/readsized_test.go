package readsized

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadAll: whatever the size given, the bytes read are the body's, a
// body over the limit is refused, and a read error comes back.
func TestReadAll(t *testing.T) {
	body := strings.Repeat("0123456789", 100) // 1000 bytes
	for _, c := range []struct {
		size, limit int64
		wantErr     error
	}{
		{1000, 1 << 20, nil}, // exact
		{0, 1 << 20, nil},    // unknown
		{10, 1 << 20, nil},   // guessed short: grows
		{5000, 1 << 20, nil}, // guessed long
		{1000, 1000, nil},    // exactly at the limit
		{1000, 999, ErrTooLarge},
		{0, 10, ErrTooLarge},
	} {
		for name, r := range map[string]io.Reader{
			"whole":   strings.NewReader(body),
			"onebyte": iotest.OneByteReader(strings.NewReader(body)),
			"dataeof": iotest.DataErrReader(strings.NewReader(body)),
		} {
			got, err := ReadAll(r, c.size, c.limit)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("%s size %d limit %d: err %v; want %v", name, c.size, c.limit, err, c.wantErr)
			}
			if err == nil && string(got) != body {
				t.Fatalf("%s size %d limit %d: got %d bytes, want the body's 1000", name, c.size, c.limit, len(got))
			}
		}
	}
	boom := errors.New("boom")
	if _, err := ReadAll(iotest.ErrReader(boom), 10, 100); !errors.Is(err, boom) {
		t.Fatalf("err %v; want %v", err, boom)
	}
	if _, err := ReadAll(io.MultiReader(bytes.NewReader(make([]byte, 20)), iotest.ErrReader(io.ErrUnexpectedEOF)), 20, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: err %v; want %v", err, io.ErrUnexpectedEOF)
	}
}

// TestReadAllExactBuffer: an announced size is read into a buffer of that
// size and one byte more, not 512 more.
func TestReadAllExactBuffer(t *testing.T) {
	got, err := ReadAll(strings.NewReader(strings.Repeat("x", 300)), 300, 1<<20)
	if err != nil || len(got) != 300 || cap(got) > 320 {
		t.Fatalf("got len %d cap %d (%v); want 300 bytes in at most a 320-byte buffer", len(got), cap(got), err)
	}
}

func BenchmarkReadAll(b *testing.B) {
	body := []byte(strings.Repeat("x", 300))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadAll(bytes.NewReader(body), 300, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
