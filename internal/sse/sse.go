// Package sse is the one Server-Sent Events reader and writer of glmkit,
// used by the SDK to read V4 streams and by glm serve to read upstreams and
// write to clients.
//
// The reader follows the WHATWG event-stream parsing rules (lines end in
// LF, CRLF or CR; "data:" lines of one event are joined with LF; a leading
// space after the colon is dropped; comment lines start with ':'; a blank
// line dispatches; an unterminated event at EOF is discarded). The writer
// emits only what the V4 clients accept (docs/v4.md §8.6): "data: <one line>"
// followed by an empty line, nothing else; WriteData flushes each event,
// WriteEvent lets a relay flush once for the events of one upstream read.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// MaxEventSize bounds one event's data, so a hostile or broken peer cannot
// make the reader buffer without end.
const MaxEventSize = 16 << 20

// ErrEventTooLarge is returned when an event exceeds MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

var errReleased = errors.New("sse: read after Release")

// Done is the data of the V4 end-of-stream marker.
var Done = []byte("[DONE]")

// Event is one dispatched event.
type Event struct {
	// Type is the "event:" field; empty means "message".
	Type string
	// ID is the last "id:" field seen.
	ID string
	// Data is the joined data lines. It is valid until the next call to Next.
	Data []byte
}

// IsDone reports whether the event is the V4 "[DONE]" marker.
func (e Event) IsDone() bool { return bytes.Equal(e.Data, Done) }

// Reader decodes events from a stream.
type Reader struct {
	// br reads from src. It is nil while the Reader waits for the source
	// without a buffer (park), and after Release (bufs nil).
	br      *bufio.Reader
	src     source
	bufs    *readBufs // line and data come from and go back to readers
	data    []byte
	hasData bool
	typ     string
	id      string
	line    []byte
	skipLF  bool // the previous line ended in CR: a following LF belongs to it
}

// readBufSize is the read buffer of a Reader. It is small because glm
// serve holds one per open stream: a V4 event is a few hundred bytes, an
// event longer than the buffer is gathered in the line buffer, which grows
// as far as the event needs (up to MaxEventSize). 32 KiB per stream was
// most of the heap of thousands of idle streams.
const readBufSize = 4 << 10

// readBufs are the line and data buffers an event is gathered in,
// recycled: without it every stream grew its own from nothing, a few
// allocations and ~1 KB per stream.
type readBufs struct {
	line, data []byte
}

// readers recycles the buffers of released Readers.
var readers = sync.Pool{New: func() any { return new(readBufs) }}

// bufReaders recycles read buffers: those of released Readers and of
// Readers waiting for their source (park).
var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// source is what a Reader's buffer reads from: the stream, and whether it
// has failed or ended (a buffer with an error not yet returned is not
// given up: park).
type source struct {
	r      io.Reader
	failed bool
	err    error // what the wait's read of no bytes returned, for the next read
}

func (s *source) Read(p []byte) (int, error) {
	if err := s.err; err != nil {
		s.err, s.failed = nil, true
		return 0, err
	}
	n, err := s.r.Read(p)
	if err != nil {
		s.failed = true
	}
	return n, err
}

// maxKeep bounds the line and data buffers a released Reader keeps for its
// next user; bigger ones (a huge event) go to the garbage collector.
const maxKeep = 64 << 10

// NewReader returns a Reader on r. Release returns its buffer for reuse.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{src: source{r: r}}
	rd.takeBufs()
	rd.br = bufReaders.Get().(*bufio.Reader)
	rd.br.Reset(&rd.src)
	return rd
}

// Release gives the Reader's read buffer back for reuse by the next
// NewReader. The Reader and the Data of its last event must not be used
// afterwards. Calling it is optional; calling it twice is harmless.
func (r *Reader) Release() {
	if r.bufs == nil {
		return
	}
	if r.br != nil {
		r.br.Reset(nil)
		bufReaders.Put(r.br)
	}
	r.putBufs()
	r.br, r.src.r = nil, nil
}

// park waits for the source's next bytes with the read buffer, empty,
// given back: a Reader on a slow stream spends nearly all its life
// waiting, and thousands of held streams each kept 4 KB for it (the buffer
// is taken again, from the pool, once bytes are there; docs/design.md §6).
// The wait is a read of no bytes: an HTTP/1.1 chunked body (the transport
// reads the next chunk's header) and an HTTP/2 body return from it once
// data has come, without consuming any. A source that returns at once
// instead (a Content-Length body, a bare connection) costs a pool round
// trip, and the read that follows waits with a buffer, as without park.
// Between events (no line or event begun) the line and data buffers are
// given back for the wait too.
func (r *Reader) park() {
	if r.src.failed {
		return // an error the buffer has yet to return
	}
	r.br.Reset(nil)
	bufReaders.Put(r.br)
	r.br = nil
	between := len(r.line) == 0 && len(r.data) == 0 && !r.hasData
	if between {
		r.putBufs()
		r.bufs = &waiting
	}
	// An error here is the stream's (the first one: an HTTP body may
	// repeat a rawer one after it); the next read returns it.
	_, r.src.err = r.src.r.Read(nil)
	if between {
		r.takeBufs()
	}
	r.br = bufReaders.Get().(*bufio.Reader)
	r.br.Reset(&r.src)
}

// waiting stands for the line and data buffers of a parked Reader, given
// back (a Reader with none is released).
var waiting readBufs

// takeBufs takes line and data buffers from the pool.
func (r *Reader) takeBufs() {
	b := readers.Get().(*readBufs)
	r.bufs, r.line, r.data = b, b.line[:0], b.data[:0]
}

// putBufs gives the line and data buffers back to the pool; those grown
// past maxKeep go to the garbage collector.
func (r *Reader) putBufs() {
	b := r.bufs
	if b == &waiting {
		r.bufs, r.line, r.data = nil, nil, nil
		return
	}
	b.line, b.data = r.line[:0], r.data[:0]
	if cap(b.line) > maxKeep {
		b.line = nil
	}
	if cap(b.data) > maxKeep {
		b.data = nil
	}
	r.bufs, r.line, r.data = nil, nil, nil
	readers.Put(b)
}

// Ready reports whether the next event is already complete in the read
// buffer, so that Next will return it without reading from the stream. It
// errs on the side of false: it says true only for an event whose first
// line is a data line and whose blank line is buffered too. A relay uses
// it to write all the events that came in one read and flush once, with
// no event waiting for bytes that have not come (docs/design.md §3).
func (r *Reader) Ready() bool {
	if r.br == nil {
		return false
	}
	buf, _ := r.br.Peek(r.br.Buffered())
	if r.skipLF && len(buf) > 0 && buf[0] == '\n' {
		buf = buf[1:]
	}
	if !bytes.HasPrefix(buf, dataField) {
		return false
	}
	return bytes.Contains(buf, blankLF) || bytes.Contains(buf, blankCRLF)
}

var (
	dataField = []byte("data:")
	blankLF   = []byte("\n\n")
	blankCRLF = []byte("\r\n\r\n")
)

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event cut off before its blank line is dropped, as the standard says;
// callers detect a cut V4 stream by the missing [DONE]).
func (r *Reader) Next() (Event, error) {
	if r.bufs == nil {
		return Event{}, errReleased
	}
	r.data = r.data[:0]
	r.hasData = false
	r.typ = ""
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if !r.hasData {
				r.typ = ""
				continue // a blank line with no data dispatches nothing
			}
			return Event{Type: r.typ, ID: r.id, Data: r.data}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > MaxEventSize {
				return Event{}, ErrEventTooLarge
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.typ = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.id = string(value)
			}
		}
		// "retry" and unknown fields are ignored.
	}
}

// readLine returns one line without its terminator. The returned slice is
// valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		if r.br.Buffered() == 0 {
			r.park()
		}
		b, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF {
				// A final line without a terminator is never part of a
				// complete event; report the end.
				return nil, io.EOF
			}
			return nil, err
		}
		if r.skipLF {
			r.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return r.line, nil
		case '\r':
			r.skipLF = true
			return r.line, nil
		}
		if len(r.line) >= MaxEventSize {
			return nil, ErrEventTooLarge
		}
		r.line = append(r.line, b)
		// Copy runs of ordinary bytes at once instead of byte by byte.
		if buf, _ := r.br.Peek(r.br.Buffered()); len(buf) > 0 {
			n := lineBreak(buf)
			if n < 0 {
				n = len(buf)
			}
			if len(r.line)+n > MaxEventSize {
				return nil, ErrEventTooLarge
			}
			r.line = append(r.line, buf[:n]...)
			_, _ = r.br.Discard(n)
		}
	}
}

// lineBreak returns the index of the first CR or LF in b, or -1. Two
// IndexByte scans (vectorised) cost a fraction of bytes.IndexAny, which
// tests a byte at a time; it ran on every event read and written.
func lineBreak(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(b) {
		return -1
	}
	return i
}

// Writer writes V4 events to an HTTP response and flushes each one.
type Writer struct {
	w   io.Writer
	f   http.Flusher
	buf []byte
}

// NewWriter returns a Writer on w; when w is an http.ResponseWriter (or
// wraps one) every event is flushed as soon as it is written.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w}
	if f, ok := w.(http.Flusher); ok {
		sw.f = f
	} else if rw, ok := w.(http.ResponseWriter); ok {
		rc := http.NewResponseController(rw)
		sw.f = flusherFunc(func() { _ = rc.Flush() })
	}
	return sw
}

type flusherFunc func()

func (f flusherFunc) Flush() { f() }

// WriteData writes one event "data: <data>\n\n" and flushes. Data with line
// breaks is split into several data lines so the event decodes to the same
// bytes; JSON from encoding/json never has raw line breaks.
func (w *Writer) WriteData(data []byte) error { return w.WriteEvent(data, true) }

// WriteEvent adds one event as WriteData does; with flush false it is kept
// and written with the next event that flushes. A relay passes flush false
// only while the next event is already at hand, so that the events of one
// upstream read leave in one write (docs/design.md §3).
func (w *Writer) WriteEvent(data []byte, flush bool) error {
	if w.buf == nil {
		w.buf = *writeBufs.Get().(*[]byte)
	}
	for {
		i := lineBreak(data)
		w.buf = append(w.buf, "data: "...)
		if i < 0 {
			w.buf = append(w.buf, data...)
			w.buf = append(w.buf, '\n')
			break
		}
		w.buf = append(w.buf, data[:i]...)
		w.buf = append(w.buf, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	w.buf = append(w.buf, '\n')
	if !flush {
		return nil
	}
	return w.Flush()
}

// writeBufs recycles the event buffers of released Writers.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, readBufSize); return &b }}

// Release gives the Writer's buffer back for reuse once the stream has
// ended; events kept and not flushed are dropped. Calling it is optional:
// Flush gives the buffer back too, and a later event takes one again.
func (w *Writer) Release() {
	if w.buf == nil || cap(w.buf) > maxKeep {
		w.buf = nil
		return
	}
	b := w.buf[:0]
	w.buf = nil
	writeBufs.Put(&b)
}

// Flush writes the events kept so far, if any, and flushes. The buffer
// goes back to the pool once written: a stream waiting for its upstream
// holds none (thousands of slow streams held 4 KB each).
func (w *Writer) Flush() error {
	if len(w.buf) > 0 {
		_, err := w.w.Write(w.buf)
		w.Release()
		if err != nil {
			return fmt.Errorf("sse: write: %w", err)
		}
	}
	if w.f != nil {
		w.f.Flush()
	}
	return nil
}

// WriteDone writes the final "data: [DONE]" event.
func (w *Writer) WriteDone() error { return w.WriteData(Done) }
