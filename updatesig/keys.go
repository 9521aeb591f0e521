// Package updatesig signs and verifies rfs update bundles with ed25519
// keys. The host (rfs keygen, rfs push) generates keys and signs; the
// device (the on-device agent, rfs-init update) parses the image's public
// key and verifies. Standard library only, so on-device code may import it.
//
// Key files are PEM: the private key is "PRIVATE KEY" (PKCS#8), the public
// key "PUBLIC KEY" (PKIX), as openssl writes them
// (`openssl pkey -in NAME.key -pubout` gives NAME.pub). A key is known by
// its ID, "sha256:" and the hex SHA-256 of its PKIX DER encoding.
package updatesig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxKeyFile bounds a key file: an ed25519 PEM key is about 120 bytes.
const MaxKeyFile = 64 << 10

const (
	privateType = "PRIVATE KEY"
	publicType  = "PUBLIC KEY"
	idPrefix    = "sha256:"
)

// pkixPrefix is the DER of an ed25519 SubjectPublicKeyInfo (RFC 8410) up
// to the 32 key bytes: KeyID needs no error path through x509.
var pkixPrefix = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}

// Generate makes a new key pair from crypto/rand.
func Generate() (ed25519.PrivateKey, ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, pub, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS#8) file.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateType, Bytes: der}), nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" (PKIX) file.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicType, Bytes: pkixDER(pub)}), nil
}

func pkixDER(pub ed25519.PublicKey) []byte {
	return append(append([]byte{}, pkixPrefix...), pub...)
}

// KeyID is "sha256:" and the 64 hex digits of the SHA-256 of pub's PKIX
// DER encoding: what signatures name and what matching compares.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pkixDER(pub))
	return idPrefix + hex.EncodeToString(sum[:])
}

// ShortKeyID is id cut to 16 hex digits, for display only.
func ShortKeyID(id string) string {
	if len(id) > len(idPrefix)+16 && strings.HasPrefix(id, idPrefix) {
		return id[:len(idPrefix)+16]
	}
	return id
}

// ParsePrivateKey reads a private key file (PEM "PRIVATE KEY", PKCS#8,
// ed25519). Anything else is refused with a message saying what it is.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case privateType:
	case publicType:
		return nil, errors.New("this is a public key (PEM \"PUBLIC KEY\"); signing needs the private key (NAME.key from rfs keygen)")
	default:
		return nil, wrongType(block.Type, privateType)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %s, not ed25519 (make one with rfs keygen)", keyKind(key))
	}
	// Only the canonical encoding: one file, one byte string.
	if again, err := x509.MarshalPKCS8PrivateKey(priv); err != nil || !bytes.Equal(again, block.Bytes) {
		return nil, errors.New("private key: not a canonical PKCS#8 ed25519 encoding")
	}
	return priv, nil
}

// ParsePublicKey reads a public key file (PEM "PUBLIC KEY", PKIX, ed25519).
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case publicType:
	case privateType:
		return nil, errors.New("this is a private key (PEM \"PRIVATE KEY\"); give the public key (NAME.pub from rfs keygen) and keep NAME.key secret")
	default:
		return nil, wrongType(block.Type, publicType)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %s, not ed25519 (make one with rfs keygen)", keyKind(key))
	}
	if len(pub) != ed25519.PublicKeySize || !bytes.Equal(pkixDER(pub), block.Bytes) {
		return nil, errors.New("public key: not a canonical PKIX ed25519 encoding")
	}
	return pub, nil
}

// decodePEM takes exactly one PEM block without headers, with nothing but
// white space around it.
func decodePEM(data []byte) (*pem.Block, error) {
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("key file is %d bytes: too large for a key (at most %d)", len(data), MaxKeyFile)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		if len(trimmed) == 0 {
			return nil, errors.New("key file is empty")
		}
		return nil, errors.New("not a PEM key file (no \"-----BEGIN\" line at its start)")
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, errors.New("not a PEM key file (malformed PEM block)")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("key file has %d bytes of trailing data after its PEM block", len(bytes.TrimSpace(rest)))
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("key file has PEM headers (an encrypted key?): rfs reads unencrypted PKCS#8 keys")
	}
	return block, nil
}

func wrongType(got, want string) error {
	hint := ""
	switch got {
	case "OPENSSH PRIVATE KEY":
		hint = " (an OpenSSH key; rfs update keys come from rfs keygen)"
	case "ENCRYPTED PRIVATE KEY":
		hint = " (encrypted keys are not supported)"
	case "RSA PRIVATE KEY", "EC PRIVATE KEY", "RSA PUBLIC KEY":
		hint = " (rfs update keys are ed25519, from rfs keygen)"
	}
	return fmt.Errorf("PEM block is %q, want %q%s", trunc(got), want, hint)
}

func keyKind(key any) string {
	switch key.(type) {
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// trunc bounds a string from the input for messages.
func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
