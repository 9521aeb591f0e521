package bundle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// LayoutPrefix starts a reference to an OCI layout directory:
// oci-layout:DIR or oci-layout:DIR:TAG.
const LayoutPrefix = "oci-layout:"

// refNameAnnotation tags a manifest in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Options are Push's and Inspect's settings; the zero value works.
type Options struct {
	// Version overrides the release version (default: the build epoch).
	Version string
	// Signer, if set, signs the config blob (see Signer).
	Signer Signer
	// Progress, if set, is called as bytes go to a registry: complete of
	// total bytes (blobs the registry has already count as sent).
	Progress func(complete, total int64)
	// Keychain finds registry credentials (default authn.DefaultKeychain:
	// ~/.docker/config.json and its credential helpers, as docker does).
	Keychain authn.Keychain
	// Transport, if set, carries registry requests (tests count them).
	Transport http.RoundTripper
}

// Pushed is what Push wrote.
type Pushed struct {
	Ref    string // as given
	Digest string // the manifest's, sha256:HEX
	Config Config
}

// Push reads the release in the image at imagePath and writes it as a
// bundle to ref: a registry reference (registry/repo:tag or @digest) or
// oci-layout:DIR[:TAG]. Blobs the destination already has are not sent.
func Push(ctx context.Context, imagePath, ref string, opts Options) (*Pushed, error) {
	rel, err := ReadImage(imagePath, opts.Version)
	if err != nil {
		return nil, err
	}
	defer rel.Close()
	a, err := newArtifact(rel, opts.Signer)
	if err != nil {
		return nil, err
	}
	img, err := a.image()
	if err != nil {
		return nil, err
	}
	if dir, tag, ok := parseLayoutRef(ref); ok {
		err = writeLayout(dir, tag, img, a.digest())
	} else {
		err = writeRemote(ctx, ref, img, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	return &Pushed{Ref: ref, Digest: a.digest().String(), Config: rel.Config}, nil
}

// parseLayoutRef splits oci-layout:DIR[:TAG]. A last colon-separated
// field holding a slash is part of DIR, not a tag.
func parseLayoutRef(ref string) (dir, tag string, ok bool) {
	rest, ok := strings.CutPrefix(ref, LayoutPrefix)
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndexByte(rest, ':'); i > 0 && !strings.ContainsAny(rest[i+1:], `/\`) {
		return rest[:i], rest[i+1:], true
	}
	return rest, "", true
}

// writeLayout adds img to the OCI layout at dir (made if missing),
// replacing what tag (or, untagged, the same digest) named before.
func writeLayout(dir, tag string, img v1.Image, digest v1.Hash) error {
	p, err := layout.FromPath(dir)
	if errors.Is(err, os.ErrNotExist) {
		p, err = layout.Write(dir, empty.Index)
	}
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", filepath.Clean(dir), err)
	}
	if tag == "" {
		return p.ReplaceImage(img, match.Digests(digest))
	}
	return p.ReplaceImage(img, match.Annotation(refNameAnnotation, tag),
		layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
}

// writeRemote pushes img to a registry.
func writeRemote(ctx context.Context, ref string, img v1.Image, opts Options) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	ropts := remoteOptions(ctx, opts)
	if opts.Progress != nil {
		ch := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range ch {
				if u.Error == nil {
					opts.Progress(u.Complete, u.Total)
				}
			}
		}()
		// remote.Write closes ch when it returns.
		defer func() { <-done }()
		ropts = append(ropts, remote.WithProgress(ch))
	}
	return remote.Write(r, img, ropts...)
}

func remoteOptions(ctx context.Context, opts Options) []remote.Option {
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	o := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		o = append(o, remote.WithTransport(opts.Transport))
	}
	return o
}
