package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Signer computes the signature of a bundle's config blob (which holds
// every part's digest, so it covers the whole release); Push stores it
// in the manifest's org.rfsbuild.signature annotation.
type Signer func(config []byte) (string, error)

// artifact is a release as an OCI image manifest, its config and its
// blobs: what go-containerregistry writes to a registry or a layout.
type artifact struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]*partLayer
}

// newArtifact makes r's manifest: config and layers in r's order, the
// annotations sorted by key (encoding/json sorts maps), so identical
// releases give identical manifest bytes and digest.
func newArtifact(r *Release, sign Signer) (*artifact, error) {
	cfg := r.Config.Marshal()
	a := &artifact{config: cfg, layers: map[v1.Hash]*partLayer{}}
	ann := map[string]string{
		AnnotationVersion: r.Config.Version,
		AnnotationCreated: r.Config.Created,
		AnnotationBoard:   r.Config.Board,
		AnnotationBuildID: r.Config.BuildID,
	}
	if sign != nil {
		sig, err := sign(cfg)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		ann[AnnotationSignature] = sig
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
		Annotations:   ann,
	}
	for i, p := range r.Config.Parts {
		h, err := v1.NewHash(p.Digest)
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", p.Name, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType: types.MediaType(p.MediaType), Size: p.Size, Digest: h,
			Annotations: map[string]string{AnnotationTitle: p.Name},
		})
		a.layers[h] = &partLayer{part: p, hash: h, open: r.blobs[i].open}
	}
	var err error
	if a.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return a, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// image is the artifact as a v1.Image.
func (a *artifact) image() (v1.Image, error) { return partial.CompressedToImage(a) }

// digest is the manifest's digest.
func (a *artifact) digest() v1.Hash { return sha256Hash(a.manifest) }

// The partial.CompressedImageCore methods.

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) ArtifactType() (string, error)       { return ArtifactType, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("no part with digest %s", h)
}

// partLayer is one part as a blob: stored as is (the media type says
// what it is; nothing is compressed on the way).
type partLayer struct {
	part Part
	hash v1.Hash
	open func() (io.ReadCloser, error)
}

func (l *partLayer) Digest() (v1.Hash, error)           { return l.hash, nil }
func (l *partLayer) Compressed() (io.ReadCloser, error) { return l.open() }
func (l *partLayer) Size() (int64, error)               { return l.part.Size, nil }
func (l *partLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.part.MediaType), nil
}
