package bundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func openSource(ctx context.Context, ref string, opts Options) (source, error) {
	if dir, tag, ok := parseLayoutRef(ref); ok {
		return openLayout(dir, tag)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return &registrySource{ref: r, opts: remoteOptions(ctx, opts)}, nil
}

// registrySource reads a bundle from a registry.
type registrySource struct {
	ref  name.Reference
	opts []remote.Option
}

func (s *registrySource) manifest(ctx context.Context) ([]byte, v1.Hash, error) {
	// HEAD first: a manifest too large is refused before its bytes come.
	head, err := remote.Head(s.ref, s.opts...)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if head.Size > MaxManifest {
		return nil, v1.Hash{}, fmt.Errorf("manifest of %d bytes: more than the %d accepted", head.Size, MaxManifest)
	}
	desc, err := remote.Get(s.ref, s.opts...)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if len(desc.Manifest) > MaxManifest {
		return nil, v1.Hash{}, fmt.Errorf("manifest of %d bytes: more than the %d accepted", len(desc.Manifest), MaxManifest)
	}
	if d, ok := s.ref.(name.Digest); ok {
		want, err := v1.NewHash(d.DigestStr())
		return desc.Manifest, want, err
	}
	return desc.Manifest, desc.Digest, nil
}

func (s *registrySource) blob(ctx context.Context, h v1.Hash) (io.ReadCloser, error) {
	l, err := remote.Layer(s.ref.Context().Digest(h.String()), s.opts...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// layoutSource reads a bundle from an OCI layout directory.
type layoutSource struct {
	path layout.Path
	desc v1.Descriptor
}

// openLayout finds the manifest tag names in the layout at dir (no tag:
// the layout's only manifest).
func openLayout(dir, tag string) (*layoutSource, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if tag == "" || d.Annotations[refNameAnnotation] == tag {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && tag != "":
		return nil, fmt.Errorf("OCI layout %s: no manifest tagged %q", dir, tag)
	case len(found) != 1:
		return nil, fmt.Errorf("OCI layout %s holds %d manifests: name one as oci-layout:%s:TAG", dir, len(found), dir)
	}
	return &layoutSource{path: p, desc: found[0]}, nil
}

func (s *layoutSource) manifest(ctx context.Context) ([]byte, v1.Hash, error) {
	if s.desc.Size > MaxManifest {
		return nil, v1.Hash{}, fmt.Errorf("manifest of %d bytes: more than the %d accepted", s.desc.Size, MaxManifest)
	}
	rc, err := s.path.Blob(s.desc.Digest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxManifest+1))
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if len(b) > MaxManifest {
		return nil, v1.Hash{}, fmt.Errorf("manifest: more than the %d bytes accepted", MaxManifest)
	}
	return b, s.desc.Digest, nil
}

func (s *layoutSource) blob(ctx context.Context, h v1.Hash) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.path.Blob(h)
}
