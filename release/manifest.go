package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Manifest is the part of an OCI image manifest a release reader needs.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Digest is "sha256:" and the hex SHA-256 of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseManifest decodes a manifest (at most MaxManifest bytes) and
// refuses anything but an rfs release, saying what it is instead.
func ParseManifest(raw []byte) (*Manifest, error) {
	if len(raw) > MaxManifest {
		return nil, fmt.Errorf("manifest of %d bytes: more than the %d accepted", len(raw), MaxManifest)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	switch {
	case m.MediaType == OCIIndex || m.MediaType == DockerManifestList:
		return nil, fmt.Errorf("an image index (%s), not an rfs release: rfs push writes a single manifest", m.MediaType)
	case m.SchemaVersion != 2:
		return nil, fmt.Errorf("manifest schemaVersion %d, want 2", m.SchemaVersion)
	case m.MediaType != OCIManifest:
		return nil, fmt.Errorf("manifest media type %q, want %q: not an rfs release", m.MediaType, OCIManifest)
	case m.ArtifactType != ArtifactType:
		return nil, fmt.Errorf("artifact type %q, want %q: not an rfs release (pushed by rfs push?)", m.ArtifactType, ArtifactType)
	case m.Config.MediaType != ConfigMediaType:
		return nil, fmt.Errorf("config media type %q, want %q", m.Config.MediaType, ConfigMediaType)
	case m.Config.Size < 0 || m.Config.Size > MaxConfig:
		return nil, fmt.Errorf("config of %d bytes: more than the %d accepted", m.Config.Size, MaxConfig)
	case !ValidDigest(m.Config.Digest):
		return nil, fmt.Errorf("config digest %q is not sha256:HEX", m.Config.Digest)
	case len(m.Layers) > MaxParts:
		return nil, fmt.Errorf("manifest lists %d layers, at most %d", len(m.Layers), MaxParts)
	}
	return &m, nil
}

// Match checks that cfg's parts are m's layers, in order, and that m's
// annotations say the same release.
func (m *Manifest) Match(cfg Config) error {
	if len(cfg.Parts) != len(m.Layers) {
		return fmt.Errorf("config lists %d parts, the manifest %d layers", len(cfg.Parts), len(m.Layers))
	}
	for i, p := range cfg.Parts {
		l := m.Layers[i]
		if l.Digest != p.Digest || l.Size != p.Size || l.MediaType != p.MediaType {
			return fmt.Errorf("part %s: config says %s %s (%d bytes), manifest layer %d says %s %s (%d bytes)",
				p.Name, p.MediaType, p.Digest, p.Size, i, l.MediaType, l.Digest, l.Size)
		}
	}
	for _, a := range []struct{ key, want string }{
		{AnnotationBoard, cfg.Board}, {AnnotationBuildID, cfg.BuildID}, {AnnotationVersion, cfg.Version},
	} {
		if got := m.Annotations[a.key]; got != a.want {
			return fmt.Errorf("manifest annotation %s %q, config says %q", a.key, got, a.want)
		}
	}
	return nil
}

// CheckConfigBlob checks that raw is the blob m's config descriptor
// names: its size and digest.
func (m *Manifest) CheckConfigBlob(raw []byte) error {
	if int64(len(raw)) != m.Config.Size {
		return fmt.Errorf("config: %d bytes, the manifest says %d", len(raw), m.Config.Size)
	}
	if got := Digest(raw); got != m.Config.Digest {
		return fmt.Errorf("config: digest %s, the manifest says %s", got, m.Config.Digest)
	}
	return nil
}

// Decode checks a manifest and the config blob read for it and returns
// the release they describe. The caller has checked the manifest's bytes
// against the digest it asked for (a tag's or a reference's @digest);
// Decode checks everything else: the config's digest and size, its
// contents, and that its parts are the manifest's layers. The signature
// is not checked here: see Verify.
func Decode(ref string, manifest, config []byte) (*Bundle, error) {
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	if err := m.CheckConfigBlob(config); err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	if err := m.Match(cfg); err != nil {
		return nil, err
	}
	return &Bundle{Ref: ref, Digest: Digest(manifest), Manifest: manifest, Config: cfg,
		RawConfig: config, Signature: m.Annotations[AnnotationSignature]}, nil
}
