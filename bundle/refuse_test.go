package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// memSource is a bundle in memory, for refusals.
type memSource struct {
	raw   []byte
	blobs map[v1.Hash][]byte
}

func (m *memSource) manifest(context.Context) ([]byte, v1.Hash, error) {
	return m.raw, sha256Hash(m.raw), nil
}

func (m *memSource) blob(_ context.Context, h v1.Hash) (io.ReadCloser, error) {
	b, ok := m.blobs[h]
	if !ok {
		return nil, fmt.Errorf("no blob %s", h)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// validManifest makes a well-formed one-part bundle; edit changes the
// manifest before it is encoded.
func validManifest(edit func(*v1.Manifest, *Config)) *memSource {
	part := []byte("kernel bytes")
	cfg := Config{Board: "qemu-arm64", Arch: "arm64", Version: "1", BuildID: "b",
		Parts: []Part{{Name: "kernel", Role: RoleKernel, MediaType: MediaKernel, Digest: sha256Hash(part).String(), Size: int64(len(part))}}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Annotations: map[string]string{AnnotationBoard: "qemu-arm64", AnnotationVersion: "1", AnnotationBuildID: "b"},
		Layers:      []v1.Descriptor{{MediaType: MediaKernel, Digest: sha256Hash(part), Size: int64(len(part))}}}
	if edit != nil {
		edit(&m, &cfg)
	}
	raw := cfg.Marshal()
	m.Config = v1.Descriptor{MediaType: ConfigMediaType, Digest: sha256Hash(raw), Size: int64(len(raw))}
	if edit != nil {
		edit(&m, &cfg) // again: edits of the config descriptor win
	}
	mb, _ := json.Marshal(m)
	return &memSource{raw: mb, blobs: map[v1.Hash][]byte{sha256Hash(part): part, sha256Hash(raw): raw}}
}

func TestInspectRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*v1.Manifest, *Config)
		want string
	}{
		{"valid", nil, ""},
		{"artifact type", func(m *v1.Manifest, _ *Config) { m.ArtifactType = "application/vnd.other" }, "not an rfs release"},
		{"config media type", func(m *v1.Manifest, _ *Config) { m.Config.MediaType = "application/json" }, "config media type"},
		{"huge config", func(m *v1.Manifest, _ *Config) { m.Config.Size = MaxConfig + 1 }, "more than the"},
		{"layer size", func(m *v1.Manifest, _ *Config) { m.Layers[0].Size++ }, "part kernel"},
		{"extra layer", func(m *v1.Manifest, _ *Config) { m.Layers = append(m.Layers[:1], m.Layers[0]) }, "1 parts, the manifest 2 layers"},
		{"wrong role media", func(_ *v1.Manifest, c *Config) { c.Parts[0].MediaType = MediaSquashfs }, "want \"application/vnd.rfs.part.kernel\""},
		{"bad part name", func(_ *v1.Manifest, c *Config) { c.Parts[0].Name = "../x" }, "part name"},
		{"board annotation", func(m *v1.Manifest, _ *Config) { m.Annotations[AnnotationBoard] = "rpi4" }, "annotation"},
		{"schema", func(m *v1.Manifest, _ *Config) { m.SchemaVersion = 1 }, "schemaVersion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := inspect(context.Background(), validManifest(c.edit))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one saying %q", err, c.want)
			}
		})
	}
}

// TestInspectContainerImage: an ordinary container image in a registry
// is refused with a clear message.
func TestInspectContainerImage(t *testing.T) {
	host, _ := startRegistry(t)
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/some/app:latest"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(context.Background(), ref, Options{Keychain: anonymous})
	if err == nil || !strings.Contains(err.Error(), "not an rfs release") {
		t.Errorf("err %v", err)
	}
}
