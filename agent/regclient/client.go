// Package regclient pulls rfs releases from OCI registries on the
// device: it resolves a reference to a release's manifest and config
// (package release checks them) and downloads blobs resumably, verified
// against their digests. Standard library only (plus updatesig and
// release), unlike the host's go-containerregistry, to keep the agent
// small. Authentication is Docker's: anonymous, else a bearer token from
// the registry's token service (anonymous or with a login), or HTTP Basic
// with a login.
package regclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Login is a user name and password (or token) for a registry.
type Login struct {
	Username, Password string
}

// Options are a Client's settings; the zero value works.
type Options struct {
	// Logins are credentials by Ref.Registry ("ghcr.io",
	// "10.0.0.5:5000", "docker.io"); a registry not listed is used
	// anonymously.
	Logins map[string]Login
	// Transport carries requests (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Retries is how many times a transient failure (a dropped
	// connection, a 5xx, 429, a stall) is retried per request or blob
	// (default 5; -1 for none).
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to a minute (default 1s).
	Backoff time.Duration
	// IdleTimeout fails a request whose server sends nothing for this
	// long, before or within the response (default 60s).
	IdleTimeout time.Duration
	// UserAgent is sent with every request (default "rfs-agent").
	UserAgent string
}

// Client talks to registries. It caches bearer tokens per registry and
// repository, and is safe for concurrent use.
type Client struct {
	opts   Options
	http   *http.Client
	mu     sync.Mutex
	tokens map[string]string // registry+" "+repo → Authorization value
}

const (
	maxBackoff  = time.Minute
	maxRedirect = 10
)

// New makes a Client.
func New(opts Options) *Client {
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Retries == 0 {
		opts.Retries = 5
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = time.Minute
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "rfs-agent"
	}
	c := &Client{opts: opts, tokens: map[string]string{}}
	c.http = &http.Client{Transport: opts.Transport, CheckRedirect: checkRedirect}
	return c
}

// checkRedirect follows a registry's redirects (blobs often live in
// object storage) to http and https only, never from https down to http.
// Credentials go to the registry only: net/http keeps Authorization
// for the same host name on another port, so it is dropped here for any
// other host:port.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	switch {
	case len(via) >= maxRedirect:
		return &redirectError{fmt.Sprintf("more than %d redirects", maxRedirect)}
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return &redirectError{fmt.Sprintf("redirect to %s: not http or https", req.URL.Redacted())}
	case req.URL.Scheme == "http" && via[0].URL.Scheme == "https":
		return &redirectError{fmt.Sprintf("redirect from https to plain http (%s) refused", req.URL.Redacted())}
	}
	return nil
}

// transientError is a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err} }

func isTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// retry runs step until it succeeds, fails for good, or has failed
// transiently more than Retries times in a row; it waits Backoff,
// 2×Backoff, ... between attempts and stops when ctx ends. mark, if not
// nil, tells how far a download got: an attempt that took it further
// than ever before starts the count (and the wait) afresh, so a long
// download on a flaky link is not given up on while it advances (and,
// the blob being finite, a server cannot keep it going for ever).
func (c *Client) retry(ctx context.Context, mark func() int64, step func() error) error {
	wait, failures, best := c.opts.Backoff, 0, int64(0)
	if mark != nil {
		best = mark()
	}
	for {
		err := step()
		if err == nil || !isTransient(err) {
			return err
		}
		if mark != nil && mark() > best {
			wait, failures, best = c.opts.Backoff, 0, mark()
		}
		if failures++; failures > c.opts.Retries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}
