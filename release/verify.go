package release

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/rfsbuild/rfs/updatesig"
)

// ErrUnsigned is a release without a signature.
var ErrUnsigned = errors.New("the release is not signed")

// Bundle is a release read back from a registry or a layout: its
// manifest and config, checked against each other (see Decode).
type Bundle struct {
	Ref       string
	Digest    string // the manifest's, sha256:HEX
	Manifest  []byte // as stored
	Config    Config
	RawConfig []byte // the bytes the signature covers
	Signature string // updatesig text; "" when unsigned
}

// Part returns the part named name.
func (b *Bundle) Part(name string) (Part, bool) {
	for _, p := range b.Config.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

// VerifySignature checks b's signature over its raw config with pub.
// The config lists every part's digest (Decode tied it to the
// manifest's layers), so the signature covers the whole release.
func (b *Bundle) VerifySignature(pub ed25519.PublicKey) error {
	if b.Signature == "" {
		return fmt.Errorf("release %s: %w", b.Ref, ErrUnsigned)
	}
	sig, err := updatesig.ParseSignature(b.Signature)
	if err != nil {
		return fmt.Errorf("release %s: signature: %w", b.Ref, err)
	}
	if err := updatesig.Verify(pub, b.RawConfig, sig); err != nil {
		return fmt.Errorf("release %s: %w", b.Ref, err)
	}
	return nil
}

// Verify is what a device checks before it uses a byte of release b:
// the signature with the image's update key pub, then that b is for
// this board and arch and (unless force) not older than the running
// version current (see Config.Accept). Parts are then used only after
// their own digest matched (the one the signed config lists).
func Verify(b *Bundle, pub ed25519.PublicKey, board, arch, current string, force bool) error {
	if err := b.VerifySignature(pub); err != nil {
		return err
	}
	if err := b.Config.Accept(board, arch, current, force); err != nil {
		return fmt.Errorf("release %s: %w", b.Ref, err)
	}
	return nil
}
