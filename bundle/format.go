// Package bundle publishes an rfs release as an OCI artifact and reads
// one back: one blob per part of a release (kernel, initramfs, boot
// files, root squashfs, each layer squashfs), described by a small JSON
// config, in an OCI image manifest that any registry (or an OCI layout
// directory) stores. Blobs are content-addressed, so a registry that has
// a part already is not sent it again, and a device that has it need not
// download it again.
package bundle

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// Media types of a bundle.
const (
	ArtifactType    = "application/vnd.rfs.release.v1"
	ConfigMediaType = "application/vnd.rfs.release.config.v1+json"

	MediaKernel    = "application/vnd.rfs.part.kernel"
	MediaInitramfs = "application/vnd.rfs.part.initramfs"
	MediaSquashfs  = "application/vnd.rfs.part.squashfs"
	MediaBootFiles = "application/vnd.rfs.part.boot-files.tar"
)

// Annotations on a bundle's manifest.
const (
	AnnotationVersion   = "org.opencontainers.image.version"
	AnnotationCreated   = "org.opencontainers.image.created"
	AnnotationBoard     = "org.rfsbuild.board"
	AnnotationBuildID   = "org.rfsbuild.build-id"
	AnnotationSignature = "org.rfsbuild.signature"
	// AnnotationTitle names a part's blob (oras pulls it under that name).
	AnnotationTitle = "org.opencontainers.image.title"
)

// Roles of a release's parts.
const (
	RoleKernel    = "kernel"
	RoleInitramfs = "initramfs"
	RoleBootFiles = "boot-files"
	RoleRoot      = "root"
	RoleLayer     = "layer"
)

// Bounds on what Inspect reads before it trusts anything.
const (
	MaxManifest = 4 << 20
	MaxConfig   = 1 << 20
	maxParts    = 64
)

// roleMedia is the media type each role's blob has.
var roleMedia = map[string]string{
	RoleKernel: MediaKernel, RoleInitramfs: MediaInitramfs, RoleBootFiles: MediaBootFiles,
	RoleRoot: MediaSquashfs, RoleLayer: MediaSquashfs,
}

// Config is the bundle's config blob: what the release is, and its parts
// in manifest layer order.
type Config struct {
	Board   string `json:"board"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
	BuildID string `json:"build_id"`
	Created string `json:"created"` // RFC 3339, UTC: the build epoch
	Parts   []Part `json:"parts"`
}

// Part is one blob of a release. Name is unique in a bundle and safe as a
// file name: kernel, initramfs, boot-files, root, layer-1, layer-2, ...
type Part struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"` // sha256:HEX
	Size      int64  `json:"size"`
}

// Marshal encodes c as compact JSON: struct fields in a fixed order, so
// identical releases give identical bytes (and digests).
func (c Config) Marshal() []byte {
	b, _ := json.Marshal(c)
	return b
}

var (
	partName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// check says what is wrong with a config read from a bundle.
func (c Config) check() error {
	switch {
	case c.Board == "" || c.Arch == "":
		return fmt.Errorf("config names no board or arch")
	case len(c.Parts) == 0 || len(c.Parts) > maxParts:
		return fmt.Errorf("config lists %d parts, want 1 to %d", len(c.Parts), maxParts)
	}
	seen := map[string]bool{}
	for _, p := range c.Parts {
		switch {
		case !partName.MatchString(p.Name):
			return fmt.Errorf("part name %q: want lower-case letters, digits and dashes", p.Name)
		case seen[p.Name]:
			return fmt.Errorf("part %s listed twice", p.Name)
		case roleMedia[p.Role] == "":
			return fmt.Errorf("part %s: unknown role %q", p.Name, p.Role)
		case roleMedia[p.Role] != p.MediaType:
			return fmt.Errorf("part %s: media type %q, want %q for role %s", p.Name, p.MediaType, roleMedia[p.Role], p.Role)
		case !digestRE.MatchString(p.Digest):
			return fmt.Errorf("part %s: digest %q is not sha256:HEX", p.Name, p.Digest)
		case p.Size < 0:
			return fmt.Errorf("part %s: negative size", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}
