package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func readAll(t testing.TB, r io.Reader) ([]Event, error) {
	t.Helper()
	sr := NewReader(r)
	var out []Event
	for {
		ev, err := sr.Next()
		if err != nil {
			return out, err
		}
		ev.Data = bytes.Clone(ev.Data) // valid only until the next call
		out = append(out, ev)
	}
}

func TestReaderFollowsTheStandard(t *testing.T) {
	in := ": a comment\n" +
		"data: one\n\n" +
		"data:two\r\n\r\n" + // CRLF, no space after the colon
		"data: three\r\r" + // bare CR
		"event: error\ndata: {\"error\":1}\n\n" +
		"id: 7\ndata: a\ndata:  b\ndata\n\n" + // joined with LF; "data" alone is an empty line
		"retry: 10\nunknown: x\n\n" + // no data: nothing dispatched
		"data: [DONE]\n\n" +
		"data: cut off"
	evs, err := readAll(t, strings.NewReader(in))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	want := []Event{
		{Data: []byte("one")},
		{Data: []byte("two")},
		{Data: []byte("three")},
		{Type: "error", Data: []byte(`{"error":1}`)},
		{ID: "7", Data: []byte("a\n b\n")},
		{ID: "7", Data: []byte("[DONE]")},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events: %q", len(evs), evs)
	}
	for i := range want {
		if evs[i].Type != want[i].Type || evs[i].ID != want[i].ID || !bytes.Equal(evs[i].Data, want[i].Data) {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	if !evs[5].IsDone() || evs[0].IsDone() {
		t.Fatal("IsDone")
	}
}

// A CRLF split across two reads is still one line ending.
func TestReaderCRLFAcrossReads(t *testing.T) {
	r := io.MultiReader(strings.NewReader("data: x\r"), strings.NewReader("\ndata: y\r"), strings.NewReader("\n\r\n"))
	evs, err := readAll(t, r)
	if !errors.Is(err, io.EOF) || len(evs) != 1 || string(evs[0].Data) != "x\ny" {
		t.Fatalf("events %q err %v", evs, err)
	}
}

func TestReaderEventTooLarge(t *testing.T) {
	big := "data: " + strings.Repeat("x", MaxEventSize+1) + "\n\n"
	if _, err := readAll(t, strings.NewReader(big)); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
	// Many data lines that add up past the limit.
	line := "data: " + strings.Repeat("y", 1<<20) + "\n"
	many := strings.Repeat(line, 17) + "\n"
	if _, err := readAll(t, strings.NewReader(many)); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), &failReader{boom})
	evs, err := readAll(t, r)
	if !errors.Is(err, boom) || len(evs) != 1 {
		t.Fatalf("events %q err %v", evs, err)
	}
}

type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

func TestWriterOutputAndFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.WriteData([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Fatal("not flushed after the event")
	}
	if err := w.WriteData([]byte("two\r\nlines\rand\nmore")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDone(); err != nil {
		t.Fatal(err)
	}
	want := "data: {\"a\":1}\n\n" + "data: two\ndata: lines\ndata: and\ndata: more\n\n" + "data: [DONE]\n\n"
	if rec.Body.String() != want {
		t.Fatalf("got %q\nwant %q", rec.Body.String(), want)
	}
}

// A ResponseWriter wrapper without Flush still gets flushed through
// http.ResponseController.
type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestWriterFlushesThroughWrapper(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(wrapped{rec})
	_ = w.WriteData([]byte("x"))
	if !rec.Flushed {
		t.Fatal("wrapped writer not flushed")
	}
}

func TestWriterError(t *testing.T) {
	w := NewWriter(&failWriter{})
	if err := w.WriteData([]byte("x")); err == nil || !strings.HasPrefix(err.Error(), "sse: write") {
		t.Fatalf("err = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// normalize is what a round trip does to data: line breaks of any style
// come back as LF.
func normalize(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	payloads := [][]byte{[]byte(`{"id":"1","choices":[]}`), []byte(""), []byte(" leading space"), []byte(":colon"), []byte("a\r\n\r\nb"), []byte("土星")}
	for _, p := range payloads {
		if err := w.WriteData(p); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := readAll(t, &buf)
	if !errors.Is(err, io.EOF) || len(evs) != len(payloads) {
		t.Fatalf("events %q err %v", evs, err)
	}
	for i, p := range payloads {
		if !bytes.Equal(evs[i].Data, normalize(p)) {
			t.Errorf("payload %d: got %q want %q", i, evs[i].Data, normalize(p))
		}
	}
}

// FuzzReader: arbitrary input never panics or returns oversize events, and
// any data written by Writer reads back unchanged (up to line-break style).
//
//	go test ./internal/sse -run='^$' -fuzz=FuzzReader -fuzztime=20s
func FuzzReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), []byte(`{"x":"y"}`))
	f.Add([]byte("event: e\r\nid: 1\r\ndata: x\r\n\r\n:c\rdata\r\r"), []byte("a\r\nb"))
	f.Add([]byte("data: cut"), []byte(""))
	f.Add([]byte("\n\n\r\r\r\n"), []byte(" \n "))
	f.Fuzz(func(t *testing.T, stream, data []byte) {
		r := NewReader(bytes.NewReader(stream))
		for range 10000 {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrEventTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(ev.Data) > MaxEventSize {
				t.Fatal("event larger than MaxEventSize")
			}
		}

		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.WriteData(data); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteDone(); err != nil {
			t.Fatal(err)
		}
		rr := NewReader(&buf)
		ev, err := rr.Next()
		if err != nil {
			t.Fatalf("written event not read back: %v", err)
		}
		if !bytes.Equal(ev.Data, normalize(data)) {
			t.Fatalf("round trip: got %q want %q", ev.Data, normalize(data))
		}
		done, err := rr.Next()
		if err != nil || !done.IsDone() {
			t.Fatalf("[DONE] not read back: %q %v", done.Data, err)
		}
		if _, err := rr.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("trailing data: %v", err)
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	chunk := []byte(`{"id":"8313807536837492492","created":1706092316,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"土星"}}]}`)
	for range 500 {
		_ = w.WriteData(chunk)
	}
	_ = w.WriteDone()
	stream := buf.Bytes()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream))
		for {
			ev, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if ev.IsDone() {
				break
			}
		}
	}
}

// Ready says true only when Next can return an event without reading.
func TestReaderReady(t *testing.T) {
	cases := []struct {
		in   string
		want []bool // Ready after each event
	}{
		{"data: a\n\ndata: b\n\ndata: c\n\n", []bool{true, true, false}},
		{"data: a\r\n\r\ndata: b\r\n\r\n", []bool{true, false}},
		{"data: a\n\ndata: b", []bool{false}},                      // b is not complete
		{"data: a\n\n: note\n\ndata: b\n\n", []bool{false, false}}, // a comment first: conservative
	}
	for _, c := range cases {
		r := NewReader(strings.NewReader(c.in))
		for i, want := range c.want {
			if _, err := r.Next(); err != nil {
				t.Fatalf("%q event %d: %v", c.in, i, err)
			}
			if got := r.Ready(); got != want {
				t.Errorf("%q after event %d: got Ready %v, want %v", c.in, i, got, want)
			}
		}
		r.Release()
		r.Release()
		if _, err := r.Next(); err == nil {
			t.Errorf("%q: got an event after Release, want an error", c.in)
		}
	}
}

// Events kept with flush false leave in one write at the next flush.
func TestWriterKeepsUntilFlush(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteEvent([]byte("a"), false); err != nil || buf.Len() != 0 {
		t.Fatalf("got %q, %v after a kept event, want nothing written", buf.String(), err)
	}
	if err := w.WriteEvent([]byte("b"), true); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "data: a\n\ndata: b\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLineBreakAgreesWithIndexAny(t *testing.T) {
	for _, s := range []string{"", "a", "\n", "\r", "\r\n", "ab\ncd\r", "ab\rcd\n", "abc", "x\n\r", strings.Repeat("y", 100) + "\r" + "\n"} {
		if got, want := lineBreak([]byte(s)), bytes.IndexAny([]byte(s), "\r\n"); got != want {
			t.Errorf("lineBreak(%q) = %d, want %d", s, got, want)
		}
	}
}

// probe is a stream source that notes, at each read of no bytes (the
// Reader's wait), whether the Reader had given its buffer back.
type probe struct {
	r      io.Reader
	rd     *Reader
	parked []bool
	// bufsBack tells, per wait, whether the line and data buffers were
	// given back too; line is the line begun then.
	bufsBack []bool
	line     []string
	waits    chan struct{}
}

func (p *probe) Read(b []byte) (int, error) {
	if len(b) == 0 {
		p.parked = append(p.parked, p.rd.br == nil)
		p.bufsBack = append(p.bufsBack, p.rd.bufs == &waiting && p.rd.line == nil && p.rd.data == nil)
		p.line = append(p.line, string(p.rd.line))
		p.waits <- struct{}{}
	}
	return p.r.Read(b)
}

// heldStream serves a real HTTP/1.1 chunked event stream that sends first,
// then holds until free is called and sends rest; it returns a Reader on
// it through a probe that records the Reader's waits.
func heldStream(t *testing.T, first, rest string) (p *probe, rd *Reader, free func()) {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, rest)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before Close, which waits for the handler
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	p = &probe{r: resp.Body, waits: make(chan struct{}, 64)}
	rd = NewReader(p)
	p.rd = rd
	return p, rd, free
}

// A Reader waiting for a real HTTP/1.1 chunked body (an upstream stream)
// holds no read buffer: the read of no bytes waits in the transport for
// the next chunk, and the events come out as without the wait.
func TestReaderWaitsWithoutBuffer(t *testing.T) {
	p, rd, free := heldStream(t, "data: one\n\ndata: tw", "o\n\ndata: [DONE]\n\n")
	ev, err := rd.Next()
	if err != nil || string(ev.Data) != "one" {
		t.Fatalf("first event %q, %v; want one", ev.Data, err)
	}
	type result struct {
		data string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := rd.Next() // "tw" is buffered; the rest has not been sent
		done <- result{string(ev.Data), err}
	}()
	select {
	case <-p.waits:
	case <-time.After(10 * time.Second):
		t.Fatal("the Reader never waited without its buffer")
	}
	select {
	case r := <-done:
		t.Fatalf("Next returned %q, %v before the upstream sent the rest", r.data, r.err)
	case <-time.After(100 * time.Millisecond):
		// Still waiting, as it must: nothing more was sent.
	}
	free()
	if r := <-done; r.err != nil || r.data != "two" {
		t.Fatalf("second event %q, %v; want two", r.data, r.err)
	}
	if ev, err := rd.Next(); err != nil || !ev.IsDone() {
		t.Fatalf("third event %q, %v; want [DONE]", ev.Data, err)
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after [DONE]: %v, want EOF", err)
	}
	for i, parked := range p.parked {
		if !parked {
			t.Errorf("wait %d: the Reader held its buffer", i)
		}
	}
	if len(p.parked) == 0 {
		t.Error("the Reader never waited without its buffer")
	}
	// It waited inside an event ("data: tw" begun): the line stays.
	inside := false
	for i, line := range p.line {
		if line == "" {
			continue
		}
		inside = true
		if line != "data: tw" || p.bufsBack[i] {
			t.Errorf("wait %d: line %q, line and data buffers given back %v; want \"data: tw\", kept", i, line, p.bufsBack[i])
		}
	}
	if !inside {
		t.Errorf("waits %q: none inside the split event", p.line)
	}
	rd.Release()
}

// Between events a waiting Reader gives back its line and data buffers
// too, and takes them again when the next event comes.
func TestReaderWaitsWithoutLineBuffersBetweenEvents(t *testing.T) {
	p, rd, free := heldStream(t, "data: one\n\n", "data: two\n\ndata: [DONE]\n\n")
	if ev, err := rd.Next(); err != nil || string(ev.Data) != "one" {
		t.Fatalf("first event %q, %v; want one", ev.Data, err)
	}
	done := make(chan string, 1)
	go func() {
		ev, err := rd.Next()
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(ev.Data)
	}()
	select {
	case <-p.waits:
	case <-time.After(10 * time.Second):
		t.Fatal("the Reader never waited")
	}
	free()
	if got := <-done; got != "two" {
		t.Fatalf("second event %q, want two", got)
	}
	if ev, err := rd.Next(); err != nil || !ev.IsDone() {
		t.Fatalf("third event %q, %v; want [DONE]", ev.Data, err)
	}
	if len(p.bufsBack) == 0 || !p.bufsBack[0] {
		t.Errorf("waits %v: the Reader kept its line and data buffers between events, want them given back", p.bufsBack)
	}
	rd.Release()
	if _, err := rd.Next(); !errors.Is(err, errReleased) {
		t.Fatalf("after Release: %v, want errReleased", err)
	}
}

// An error that comes with the last bytes is returned once those are
// read, not lost to the wait (the buffer keeps it until then).
func TestReaderKeepsErrorWithLastBytes(t *testing.T) {
	boom := errors.New("boom")
	rd := NewReader(&lastBytes{data: "data: a\n\ndata: b", err: boom})
	if ev, err := rd.Next(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("first event %q, %v; want a", ev.Data, err)
	}
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the source's error", err)
	}
}

// lastBytes returns its data and err from one read, then reads of no
// bytes return nothing, and later reads io.EOF: a source whose error is
// not repeated.
type lastBytes struct {
	data string
	err  error
	done bool
}

func (l *lastBytes) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.done {
		return 0, io.EOF
	}
	l.done = true
	return copy(p, l.data), l.err
}

// The error the wait's read of no bytes meets is the one returned: an
// HTTP body gives the cancellation first and a rawer error after it.
func TestReaderReturnsTheWaitsError(t *testing.T) {
	first, later := errors.New("first"), errors.New("later")
	rd := NewReader(&errOnce{first: first, later: later})
	if _, err := rd.Next(); !errors.Is(err, first) {
		t.Fatalf("got %v, want %v", err, first)
	}
}

// errOnce fails its first read, of no bytes or not, with first, and every
// later one with later.
type errOnce struct {
	first, later error
	n            int
}

func (e *errOnce) Read([]byte) (int, error) {
	e.n++
	if e.n == 1 {
		return 0, e.first
	}
	return 0, e.later
}
