package updatesig

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Domain is prepended to every signed payload, so that a signature made
// for an rfs update cannot be replayed as a signature for anything else
// signed with the same key, and vice versa.
const Domain = "rfs-update-v1\x00"

// Algorithm is the first field of a signature's text form.
const Algorithm = "ed25519"

// MaxSignatureText bounds ParseSignature's input: the text form is
// exactly SignatureTextLen bytes.
const MaxSignatureText = 256

// SignatureTextLen is the length of Signature.String:
// "ed25519:" + "sha256:" + 64 hex + ":" + 88 base64.
const SignatureTextLen = len(Algorithm) + 1 + len(idPrefix) + 64 + 1 + 88

// The ways Verify refuses, each its own error (test with errors.Is).
var (
	// ErrMalformed: the signature is not 64 bytes or its key ID is not a
	// key ID (a truncated or garbled signature).
	ErrMalformed = errors.New("malformed signature")
	// ErrOtherKey: the signature is by another key than the trusted one.
	ErrOtherKey = errors.New("signed by another key")
	// ErrKeyIDMismatch: the signature verifies with the trusted key but
	// names another key ID: edited or mislabelled, refused all the same.
	ErrKeyIDMismatch = errors.New("signature names the wrong key ID")
	// ErrBadSignature: the signature names the trusted key but does not
	// verify: the payload was changed or the signature forged.
	ErrBadSignature = errors.New("signature does not match the payload")
)

// Signature is an ed25519 signature and the ID of the key that made it.
type Signature struct {
	KeyID string // "sha256:" + 64 hex digits, as KeyID returns
	Sig   []byte // ed25519.SignatureSize bytes
}

// String is the compact text form "ed25519:sha256:HEX:BASE64", which
// ParseSignature reads.
func (s Signature) String() string {
	return Algorithm + ":" + s.KeyID + ":" + base64.StdEncoding.EncodeToString(s.Sig)
}

// MarshalText is String, for JSON and YAML.
func (s Signature) MarshalText() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText is ParseSignature.
func (s *Signature) UnmarshalText(b []byte) error {
	p, err := ParseSignature(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// check is the shape test shared by MarshalText and Verify.
func (s Signature) check() error {
	if len(s.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(s.Sig), ed25519.SignatureSize)
	}
	if !validKeyID(s.KeyID) {
		return fmt.Errorf("%w: key ID %q is not \"sha256:\" and 64 lowercase hex digits", ErrMalformed, trunc(s.KeyID))
	}
	return nil
}

// Sign signs Domain+payload. Payloads are small (a manifest or a digest):
// the two are joined in memory.
func Sign(priv ed25519.PrivateKey, payload []byte) (Signature, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Signature{}, fmt.Errorf("sign: ed25519 private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return Signature{KeyID: KeyID(pub), Sig: ed25519.Sign(priv, message(payload))}, nil
}

// Verify checks that sig is pub's signature of payload (under Domain).
func Verify(pub ed25519.PublicKey, payload []byte, sig Signature) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: ed25519 public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if err := sig.check(); err != nil {
		return err
	}
	want := KeyID(pub)
	ok := ed25519.Verify(pub, message(payload), sig.Sig)
	switch {
	case sig.KeyID != want && ok:
		return fmt.Errorf("%w: it names key %s, but was made by the trusted key %s", ErrKeyIDMismatch, ShortKeyID(sig.KeyID), ShortKeyID(want))
	case sig.KeyID != want:
		return fmt.Errorf("%w: signed by key %s, this image trusts key %s", ErrOtherKey, ShortKeyID(sig.KeyID), ShortKeyID(want))
	case !ok:
		return fmt.Errorf("%w: key %s: the signed content was changed or the signature forged", ErrBadSignature, ShortKeyID(want))
	}
	return nil
}

func message(payload []byte) []byte {
	m := make([]byte, 0, len(Domain)+len(payload))
	return append(append(m, Domain...), payload...)
}

// ParseSignature reads the text form "ed25519:sha256:HEX:BASE64" (String's
// output) strictly: no white space, lowercase hex, padded standard base64
// of exactly 64 bytes.
func ParseSignature(text string) (Signature, error) {
	if len(text) > MaxSignatureText {
		return Signature{}, fmt.Errorf("%w: %d bytes of text, at most %d", ErrMalformed, len(text), MaxSignatureText)
	}
	alg, rest, ok := strings.Cut(text, ":")
	if !ok || alg != Algorithm {
		return Signature{}, fmt.Errorf("%w: %q does not start with %q", ErrMalformed, trunc(text), Algorithm+":")
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Signature{}, fmt.Errorf("%w: want %s:KEYID:BASE64", ErrMalformed, Algorithm)
	}
	id, b64 := rest[:i], rest[i+1:]
	if !validKeyID(id) {
		return Signature{}, fmt.Errorf("%w: key ID %q is not \"sha256:\" and 64 lowercase hex digits", ErrMalformed, trunc(id))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Signature{}, fmt.Errorf("%w: signature bytes: %v", ErrMalformed, err)
	}
	if len(raw) != ed25519.SignatureSize {
		return Signature{}, fmt.Errorf("%w: %d bytes, want %d (truncated?)", ErrMalformed, len(raw), ed25519.SignatureSize)
	}
	// The decoder ignores \r and \n; only the canonical form is accepted.
	if base64.StdEncoding.EncodeToString(raw) != b64 {
		return Signature{}, fmt.Errorf("%w: signature bytes are not canonical base64", ErrMalformed)
	}
	return Signature{KeyID: id, Sig: raw}, nil
}

func validKeyID(id string) bool {
	h, ok := strings.CutPrefix(id, idPrefix)
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
