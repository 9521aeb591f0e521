package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rfsbuild/rfs/release"
)

// Bundle is a bundle read back from a registry or a layout: its manifest
// and config, checked against each other (release.Bundle); parts are
// read with Open.
type Bundle struct {
	release.Bundle
	src source
}

// source is where a bundle's manifest and blobs come from.
type source interface {
	// manifest returns the manifest's bytes (at most MaxManifest) and the
	// digest they must have.
	manifest(ctx context.Context) ([]byte, v1.Hash, error)
	// blob opens a blob; the caller bounds and verifies what it reads.
	blob(ctx context.Context, h v1.Hash) (io.ReadCloser, error)
}

// Inspect reads the manifest and config of the bundle at ref (a registry
// reference or oci-layout:DIR[:TAG]) and checks them: sizes bounded, the
// media types and artifact type rfs writes, and every part of the config
// equal to the manifest layer at its place (digest, size, media type).
func Inspect(ctx context.Context, ref string, opts Options) (*Bundle, error) {
	src, err := openSource(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	b, err := inspect(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	b.Ref = ref
	return b, nil
}

func inspect(ctx context.Context, src source) (*Bundle, error) {
	raw, want, err := src.manifest(ctx)
	if err != nil {
		return nil, err
	}
	if got := sha256Hash(raw); got != want {
		return nil, fmt.Errorf("manifest digest %s, want %s", got, want)
	}
	m, err := release.ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfgRaw, err := readVerified(ctx, src, h, m.Config.Size, MaxConfig)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rb, err := release.Decode("", raw, cfgRaw)
	if err != nil {
		return nil, err
	}
	return &Bundle{Bundle: *rb, src: src}, nil
}

// readVerified reads the blob h of size bytes (at most limit) and checks
// its size and digest.
func readVerified(ctx context.Context, src source, h v1.Hash, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%d bytes: more than the %d accepted", size, limit)
	}
	rc, err := src.blob(ctx, h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, newVerifier(rc, h, size)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Open reads part name. The reader returns an error, never io.EOF, if the
// blob is longer or shorter than the part's size or its digest differs:
// use nothing read from it until it has returned io.EOF.
func (b *Bundle) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, ok := b.Part(name)
	if !ok {
		return nil, fmt.Errorf("bundle %s has no part %q", b.Ref, name)
	}
	h, err := v1.NewHash(p.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := b.src.blob(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("part %s: %w", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{newVerifier(rc, h, p.Size), rc}, nil
}

// ErrDigest means a blob's bytes are not the ones its digest names.
var ErrDigest = errors.New("blob does not match its digest")

// verifier passes on exactly size bytes and fails at the end unless
// they hash to want.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	left int64
}

func newVerifier(r io.Reader, want v1.Hash, size int64) *verifier {
	return &verifier{r: io.LimitReader(r, size+1), h: sha256.New(), want: want, left: size}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.left -= int64(n)
	if v.left < 0 {
		return 0, fmt.Errorf("%s: %w (longer than its size)", v.want, ErrDigest)
	}
	v.h.Write(p[:n])
	if err == io.EOF {
		if v.left > 0 {
			return n, fmt.Errorf("%s: %w (%d bytes short)", v.want, ErrDigest, v.left)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); v.want.Algorithm != "sha256" || got != v.want.Hex {
			return n, fmt.Errorf("%s: %w (got sha256:%s)", v.want, ErrDigest, got)
		}
	}
	return n, err
}

// Fetch inspects the bundle at ref and writes each part into dir as a
// file named after it, verified before it gets its name (written as
// NAME.partial, renamed when its digest matched). A part whose file is
// already there with the right digest is not read again.
func Fetch(ctx context.Context, ref, dir string, opts Options) (*Bundle, error) {
	b, err := Inspect(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, p := range b.Config.Parts {
		if err := b.fetchPart(ctx, p, filepath.Join(dir, p.Name)); err != nil {
			return nil, fmt.Errorf("%s: part %s: %w", ref, p.Name, err)
		}
	}
	return b, nil
}

func (b *Bundle) fetchPart(ctx context.Context, p Part, dst string) error {
	if haveFile(dst, p) {
		return nil
	}
	rc, err := b.Open(ctx, p.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp := dst + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return os.Rename(tmp, dst)
	}
	os.Remove(tmp)
	return err
}

// haveFile reports whether path holds p's bytes.
func haveFile(path string, p Part) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h, err := v1.NewHash(p.Digest)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, newVerifier(f, h, p.Size))
	return err == nil
}
