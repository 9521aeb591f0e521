package regclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/rfsbuild/rfs/release"
)

// manifestAccept asks for an OCI manifest; the index types are named so
// that a registry answers with one instead of a 404, and we can say what
// it is.
var manifestAccept = strings.Join([]string{
	release.OCIManifest, release.OCIIndex,
	"application/vnd.docker.distribution.manifest.v2+json", release.DockerManifestList,
}, ", ")

// ErrDigest means bytes from a registry are not the ones their digest
// names.
var ErrDigest = errors.New("content does not match its digest")

// Resolve reads the release ref names: its manifest (at most
// release.MaxManifest bytes, its digest checked against the registry's
// Docker-Content-Digest and the reference's @digest) and its config
// (bounded, checked against the manifest), checked by release.Decode.
// The signature and policy are not checked here: call release.Verify
// before using any part.
func (c *Client) Resolve(ctx context.Context, ref string) (*release.Bundle, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	var raw, cfg []byte
	err = c.retry(ctx, nil, func() (err error) {
		raw, err = c.manifest(ctx, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", r, err)
	}
	m, err := release.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	err = c.retry(ctx, nil, func() (err error) {
		cfg, err = c.blobBytes(ctx, r, m.Config.Digest, m.Config.Size)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", r, err)
	}
	b, err := release.Decode(r.String(), raw, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	return b, nil
}

// manifest GETs r's manifest and checks its digest.
func (c *Client) manifest(ctx context.Context, r Ref) ([]byte, error) {
	resp, err := c.get(ctx, r, r.url("manifests", r.Reference()), http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == release.OCIIndex || mt == release.DockerManifestList {
		return nil, fmt.Errorf("an image index (%s), not an rfs release: rfs push writes a single manifest", mt)
	}
	raw, err := readBounded(resp, release.MaxManifest)
	if err != nil {
		return nil, err
	}
	got := release.Digest(raw)
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != got {
		return nil, fmt.Errorf("%w: the registry says %s, the manifest's bytes are %s", ErrDigest, clean(d), got)
	}
	if r.Digest != "" && r.Digest != got {
		return nil, fmt.Errorf("%w: asked for %s, got %s", ErrDigest, r.Digest, got)
	}
	return raw, nil
}

// readBounded reads a body of at most limit bytes, refusing a larger
// one before reading it if its length is announced.
func readBounded(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%d bytes: more than the %d accepted", resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than the %d bytes accepted", limit)
	}
	return b, nil
}

// blobBytes reads a small blob into memory and verifies it.
func (c *Client) blobBytes(ctx context.Context, r Ref, digest string, size int64) ([]byte, error) {
	resp, err := c.get(ctx, r, r.url("blobs", digest), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	defer resp.Body.Close()
	b, err := readBounded(resp, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDigest, err)
	}
	if int64(len(b)) != size || release.Digest(b) != digest {
		return nil, fmt.Errorf("%w: %s: got %d bytes hashing to %s, want %d bytes", ErrDigest, digest, len(b), release.Digest(b), size)
	}
	return b, nil
}
