package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

// This file builds the SDK client for the client-side commands (chat,
// embed, token, async, rag, extract, analyze) from flags and environment,
// and turns transport and API failures into one-line messages a user can
// act on: no stack traces, and never the key.

// cliClientFlags are the connection flags every client-side command takes.
type cliClientFlags struct {
	apiKey  string
	baseURL string
	timeout time.Duration
	retries int
	rawKey  bool
}

func (f *cliClientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.apiKey, "api-key", "", "API key id.secret (default $ZHIPUAI_API_KEY)")
	fl.StringVar(&f.baseURL, "base-url", "", "V4 API base, e.g. http://127.0.0.1:8080/api/paas/v4 for glm serve (default $ZHIPUAI_BASE_URL, else the Zhipu cloud)")
	fl.DurationVar(&f.timeout, "timeout", zhipuai.DefaultTimeout, "per-request timeout")
	fl.IntVar(&f.retries, "max-retries", zhipuai.DefaultMaxRetries, "retries on connection errors, 429 and 5xx")
	fl.BoolVar(&f.rawKey, "raw-key", false, "send the key itself as the Bearer token instead of a signed JWT")
}

// key returns the API key from the flag or the environment, with a clear
// error when there is none.
func (f *cliClientFlags) key() (string, error) {
	k := strings.TrimSpace(f.apiKey)
	if k == "" {
		k = strings.TrimSpace(os.Getenv(zhipuai.EnvAPIKey))
	}
	if k == "" {
		return "", errors.New("no API key: set ZHIPUAI_API_KEY=id.secret or pass --api-key " +
			"(keys come from the Zhipu open platform console, or from `glm serve`, which prints one on first start)")
	}
	return k, nil
}

func (f *cliClientFlags) base() string {
	if b := strings.TrimSpace(f.baseURL); b != "" {
		return b
	}
	if b := strings.TrimSpace(os.Getenv(zhipuai.EnvBaseURL)); b != "" {
		return b
	}
	return zhipuai.DefaultBaseURL
}

func (f *cliClientFlags) client() (*zhipuai.Client, error) {
	key, err := f.key()
	if err != nil {
		return nil, err
	}
	opts := []zhipuai.Option{
		zhipuai.WithAPIKey(key),
		zhipuai.WithBaseURL(f.base()),
		zhipuai.WithTimeout(f.timeout),
		zhipuai.WithMaxRetries(f.retries),
	}
	if f.rawKey {
		opts = append(opts, zhipuai.WithRawKey())
	}
	c, err := zhipuai.NewClient(opts...)
	if err != nil {
		return nil, cliStripPrefix(err)
	}
	return c, nil
}

// explain turns an error from a call into a message for people. The base
// URL is shown (it is not secret and is what the user must check); the key
// never is: SDK errors do not carry it and nothing here adds it.
func (f *cliClientFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	base := f.base()
	var apiErr *zhipuai.APIError
	var dnsErr *net.DNSError
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &apiErr):
		msg := strings.TrimPrefix(apiErr.Error(), "zhipuai: ")
		switch apiErr.StatusCode {
		case 401:
			return fmt.Errorf("%s\nthe platform at %s rejected the API key: check ZHIPUAI_API_KEY / --api-key", msg, base)
		case 404:
			// A 404 on the right base is the API's own answer (an unknown
			// task id, say): the hint is for a base that looks wrong.
			if !strings.HasSuffix(strings.TrimRight(base, "/"), "/api/paas/v4") {
				return fmt.Errorf("%s\nis %s the V4 API base (it ends in /api/paas/v4)?", msg, base)
			}
		}
		return errors.New(msg)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot reach %s: host %q not found (check --base-url / ZHIPUAI_BASE_URL and the network)", base, dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach %s: connection refused (is glm serve running there? check --base-url / ZHIPUAI_BASE_URL)", base)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("no answer from %s in time (raise --timeout, or check the network)", base)
	case errors.As(err, &urlErr):
		return fmt.Errorf("cannot reach %s: %v", base, cliStripPrefix(urlErr.Err))
	}
	return cliStripPrefix(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cliStripPrefix drops the SDK's "zhipuai: " prefix: the CLI prints "glm: ".
func cliStripPrefix(err error) error {
	if s, ok := strings.CutPrefix(err.Error(), "zhipuai: "); ok {
		return errors.New(s)
	}
	return err
}

// cliIsTerminal reports whether f is an interactive terminal (a character
// device), without a terminal library.
func cliIsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// cliWriteJSON prints v as indented JSON, leaving non-ASCII text (Chinese)
// readable instead of \u-escaped.
func cliWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cliWriteJSONLine prints v as one line of JSON (NDJSON).
func cliWriteJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
