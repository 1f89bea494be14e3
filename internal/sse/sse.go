// Package sse is the one Server-Sent Events reader and writer of glmkit,
// used by the SDK to read V4 streams and by glm serve to read upstreams and
// write to clients.
//
// The reader follows the WHATWG event-stream parsing rules (lines end in
// LF, CRLF or CR; "data:" lines of one event are joined with LF; a leading
// space after the colon is dropped; comment lines start with ':'; a blank
// line dispatches; an unterminated event at EOF is discarded). The writer
// emits only what the V4 clients accept (docs/v4.md §8.6): "data: <one line>"
// followed by an empty line, nothing else, flushed per event.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxEventSize bounds one event's data, so a hostile or broken peer cannot
// make the reader buffer without end.
const MaxEventSize = 16 << 20

// ErrEventTooLarge is returned when an event exceeds MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

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
	br      *bufio.Reader
	data    []byte
	hasData bool
	typ     string
	id      string
	line    []byte
	skipLF  bool // the previous line ended in CR: a following LF belongs to it
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 32<<10)}
}

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event cut off before its blank line is dropped, as the standard says;
// callers detect a cut V4 stream by the missing [DONE]).
func (r *Reader) Next() (Event, error) {
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
			n := bytes.IndexAny(buf, "\r\n")
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
func (w *Writer) WriteData(data []byte) error {
	w.buf = w.buf[:0]
	for {
		i := bytes.IndexAny(data, "\r\n")
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
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	if w.f != nil {
		w.f.Flush()
	}
	return nil
}

// WriteDone writes the final "data: [DONE]" event.
func (w *Writer) WriteDone() error { return w.WriteData(Done) }
