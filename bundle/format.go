// Package bundle publishes an rfs release as an OCI artifact and reads
// one back: one blob per part of a release (kernel, initramfs, boot
// files, root squashfs, each layer squashfs), described by a small JSON
// config, in an OCI image manifest that any registry (or an OCI layout
// directory) stores. Blobs are content-addressed, so a registry that has
// a part already is not sent it again, and a device that has it need not
// download it again. The format itself (media types, config, checks,
// signature and policy) is package release, which the device shares.
package bundle

import "github.com/rfsbuild/rfs/release"

// Media types of a bundle.
const (
	ArtifactType    = release.ArtifactType
	ConfigMediaType = release.ConfigMediaType

	MediaKernel    = release.MediaKernel
	MediaInitramfs = release.MediaInitramfs
	MediaSquashfs  = release.MediaSquashfs
	MediaBootFiles = release.MediaBootFiles
)

// Annotations on a bundle's manifest.
const (
	AnnotationVersion   = release.AnnotationVersion
	AnnotationCreated   = release.AnnotationCreated
	AnnotationBoard     = release.AnnotationBoard
	AnnotationBuildID   = release.AnnotationBuildID
	AnnotationSignature = release.AnnotationSignature
	AnnotationTitle     = release.AnnotationTitle
)

// Roles of a release's parts.
const (
	RoleKernel    = release.RoleKernel
	RoleInitramfs = release.RoleInitramfs
	RoleBootFiles = release.RoleBootFiles
	RoleRoot      = release.RoleRoot
	RoleLayer     = release.RoleLayer
)

// Bounds on what Inspect reads before it trusts anything.
const (
	MaxManifest = release.MaxManifest
	MaxConfig   = release.MaxConfig
)

// Config is the bundle's config blob (release.Config).
type Config = release.Config

// Part is one blob of a release (release.Part).
type Part = release.Part
