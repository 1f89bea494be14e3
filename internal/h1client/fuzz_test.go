package h1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.0 404 Not Found\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	replies := make(chan []byte)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			data := <-replies
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				c.Write(data)
			}()
		}
	}()
	u := "http://" + ln.Addr().String()
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantBody, wantErr := reference(data)
		tr, _ := newTransport()
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		errc := make(chan error, 1)
		var resp *http.Response
		go func() {
			var err error
			resp, err = tr.RoundTrip(req)
			errc <- err
		}()
		replies <- data
		err := <-errc
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("headers: got error %v, ReadResponse's %v", err, wantErr)
		}
		if err != nil {
			return
		}
		body, berr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ctx.Err() != nil {
			t.Fatal("the round trip hung")
		}
		if resp.StatusCode != want.StatusCode || !bytes.Equal(body, wantBody.b) || (berr != nil) != (wantBody.err != nil) {
			t.Fatalf("got %d %q %v, ReadResponse %d %q %v", resp.StatusCode, body, berr, want.StatusCode, wantBody.b, wantBody.err)
		}
	})
}

type bodyRead struct {
	b   []byte
	err error
}

// reference reads data as http.ReadResponse does, skipping 1xx replies.
func reference(data []byte) (*http.Response, bodyRead, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	for range max1xxReplies + 1 {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, bodyRead{}, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, bodyRead{}, errors.New("101")
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			b, err := io.ReadAll(resp.Body)
			return resp, bodyRead{b, err}, nil
		}
	}
	return nil, bodyRead{}, errors.New("too many 1xx")
}
