// Package release is the format of an rfs release as an OCI artifact,
// shared by the host (bundle: rfs push, rfs update) and the device (the
// agent's registry client): media types, the config blob, the checks
// that tie the config to the manifest, the signature check and the
// policy a device applies before it uses a byte of a release. Standard
// library and updatesig only, so on-device code may import it.
package release

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Media types of a release.
const (
	ArtifactType    = "application/vnd.rfs.release.v1"
	ConfigMediaType = "application/vnd.rfs.release.config.v1+json"

	MediaKernel    = "application/vnd.rfs.part.kernel"
	MediaInitramfs = "application/vnd.rfs.part.initramfs"
	MediaSquashfs  = "application/vnd.rfs.part.squashfs"
	MediaBootFiles = "application/vnd.rfs.part.boot-files.tar"

	// OCIManifest is the only manifest media type a release has.
	OCIManifest = "application/vnd.oci.image.manifest.v1+json"
	// OCIIndex and DockerManifestList are what a multi-platform image
	// is: refused with a message saying so.
	OCIIndex           = "application/vnd.oci.image.index.v1+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Annotations on a release's manifest.
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

// Bounds on what a reader accepts before it trusts anything.
const (
	MaxManifest = 4 << 20
	MaxConfig   = 1 << 20
	MaxParts    = 64
)

// RoleMediaType is the media type a part of role has ("" for an unknown
// role).
func RoleMediaType(role string) string {
	switch role {
	case RoleKernel:
		return MediaKernel
	case RoleInitramfs:
		return MediaInitramfs
	case RoleBootFiles:
		return MediaBootFiles
	case RoleRoot, RoleLayer:
		return MediaSquashfs
	}
	return ""
}

// Config is a release's config blob: what the release is, and its parts
// in manifest layer order.
type Config struct {
	Board   string `json:"board"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
	BuildID string `json:"build_id"`
	Created string `json:"created"` // RFC 3339, UTC: the build epoch
	Parts   []Part `json:"parts"`
}

// Part is one blob of a release. Name is unique in a release and safe as
// a file name: kernel, initramfs, boot-files, root, layer-1, layer-2, ...
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

// ValidDigest reports whether d is "sha256:" and 64 lowercase hex
// digits: the only digests a release uses, safe in a URL path. (No
// regexp here or in validPartName: the device binary goes without
// package regexp.)
func ValidDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(h) == 64 && strings.Trim(h, "0123456789abcdef") == ""
}

// validPartName: ^[a-z0-9][a-z0-9-]{0,63}$.
func validPartName(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && s[0] != '-' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// Check says what is wrong with a config read from a release.
func (c Config) Check() error {
	switch {
	case c.Board == "" || c.Arch == "":
		return fmt.Errorf("config names no board or arch")
	case len(c.Parts) == 0 || len(c.Parts) > MaxParts:
		return fmt.Errorf("config lists %d parts, want 1 to %d", len(c.Parts), MaxParts)
	}
	seen := map[string]bool{}
	for _, p := range c.Parts {
		if err := p.check(); err != nil {
			return err
		}
		if seen[p.Name] {
			return fmt.Errorf("part %s listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

func (p Part) check() error {
	media := RoleMediaType(p.Role)
	switch {
	case !validPartName(p.Name):
		return fmt.Errorf("part name %q: want lower-case letters, digits and dashes", p.Name)
	case media == "":
		return fmt.Errorf("part %s: unknown role %q", p.Name, p.Role)
	case media != p.MediaType:
		return fmt.Errorf("part %s: media type %q, want %q for role %s", p.Name, p.MediaType, media, p.Role)
	case !ValidDigest(p.Digest):
		return fmt.Errorf("part %s: digest %q is not sha256:HEX", p.Name, p.Digest)
	case p.Size < 0:
		return fmt.Errorf("part %s: negative size", p.Name)
	}
	return nil
}

// ParseConfig decodes a config blob and checks it.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}
