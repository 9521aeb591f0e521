package regclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 4 << 10

// StatusError is a registry's refusal: an HTTP status other than the
// one asked for, with the registry's own error message if it sent one.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string
	Message    string // the registry's errors[].code: message, if any
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("GET %s: %s", e.URL, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// statusError reads (a bounded part of) resp's body and closes it. 5xx,
// 408 and 429 are transient.
func statusError(resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &StatusError{URL: resp.Request.URL.Redacted(), StatusCode: resp.StatusCode, Status: resp.Status, Message: registryMessage(body)}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return transient(e)
	}
	return e
}

// registryMessage reads the distribution spec's error body.
func registryMessage(body []byte) string {
	var r struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	var parts []string
	for _, e := range r.Errors {
		parts = append(parts, clean(e.Code+": "+e.Message))
	}
	return strings.Join(parts, "; ")
}

// clean makes hostile text safe to log: printable ASCII, at most 200 bytes.
func clean(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

var errIdle = errors.New("the server sent nothing")

// send makes one GET with an idle watchdog: the request fails if the
// server sends nothing for IdleTimeout, waiting for the response or
// within its body (each read rearms it).
func (c *Client) send(ctx context.Context, url string, hdr http.Header) (*http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.opts.IdleTimeout, func() { cancel(errIdle) })
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		timer.Stop()
		defer cancel(nil)
		return nil, c.classify(ctx, rctx, err)
	}
	resp.Body = &idleBody{ReadCloser: resp.Body, c: c, parent: ctx, rctx: rctx, timer: timer, cancel: cancel}
	return resp, nil
}

// classify marks err transient unless it is for good: the caller's
// context ended, a refused redirect, a TLS certificate problem.
func (c *Client) classify(parent, rctx context.Context, err error) error {
	if parent.Err() != nil {
		return err
	}
	if errors.Is(context.Cause(rctx), errIdle) {
		return transient(fmt.Errorf("%w for %v: %v", errIdle, c.opts.IdleTimeout, err))
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		badCert   *tls.CertificateVerificationError
		hostname  x509.HostnameError
		redirect  *redirectError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &badCert) || errors.As(err, &hostname) || errors.As(err, &redirect) {
		return err
	}
	return transient(err)
}

// redirectError is checkRedirect's refusal.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// idleBody rearms the watchdog on each read and marks read errors
// transient.
type idleBody struct {
	io.ReadCloser
	c      *Client
	parent context.Context
	rctx   context.Context
	timer  *time.Timer
	cancel context.CancelCauseFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.timer.Reset(b.c.opts.IdleTimeout)
	if err != nil && err != io.EOF {
		err = b.c.classify(b.parent, b.rctx, err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}
