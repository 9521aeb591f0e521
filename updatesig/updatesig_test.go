package updatesig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func mustGenerate(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	priv, pub, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func mustMarshal(t testing.TB, priv ed25519.PrivateKey) (key, pubFile []byte) {
	t.Helper()
	key, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubFile, err = MarshalPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return key, pubFile
}

func TestKeyRoundTrip(t *testing.T) {
	priv, pub := mustGenerate(t)
	keyFile, pubFile := mustMarshal(t, priv)
	if !bytes.HasPrefix(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n")) || !bytes.HasPrefix(pubFile, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("PEM types:\n%s%s", keyFile, pubFile)
	}
	gotPriv, err := ParsePrivateKey(keyFile)
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	gotPub, err := ParsePublicKey(pubFile)
	if err != nil || !gotPub.Equal(pub) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	// The DER is what openssl and x509 write.
	der, _ := x509.MarshalPKIXPublicKey(pub)
	if b, _ := pem.Decode(pubFile); !bytes.Equal(b.Bytes, der) {
		t.Error("public key DER differs from x509.MarshalPKIXPublicKey")
	}
}

func TestKeyID(t *testing.T) {
	// RFC 8032 test 1's public key; the ID is sha256 of its PKIX DER
	// (echo MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo= | base64 -d | sha256sum).
	pub := ed25519.PublicKey{0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
		0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || !bytes.Equal(der, pkixDER(pub)) {
		t.Fatalf("pkixDER differs from x509: %v", err)
	}
	id := KeyID(pub)
	if !validKeyID(id) {
		t.Fatalf("KeyID %q is not a key ID", id)
	}
	if got := ShortKeyID(id); got != id[:23] || len(got) != len("sha256:")+16 {
		t.Errorf("ShortKeyID %q", got)
	}
	_, other := mustGenerate(t)
	if KeyID(other) == id {
		t.Error("two keys, one ID")
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseKeysRefuse(t *testing.T) {
	priv, _ := mustGenerate(t)
	keyFile, pubFile := mustMarshal(t, priv)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})
	pubDER, _ := pem.Decode(pubFile)
	privDER, _ := pem.Decode(keyFile)
	big := append(bytes.Repeat([]byte("\n"), MaxKeyFile), keyFile...)
	tests := []struct {
		name    string
		private bool
		in      []byte
		want    string
	}{
		{"empty private", true, nil, "key file is empty"},
		{"empty public", false, []byte(" \n"), "key file is empty"},
		{"not PEM", false, []byte("ssh-ed25519 AAAA user@host\n"), "not a PEM key file"},
		{"leading garbage", true, append([]byte("x\n"), keyFile...), "not a PEM key file"},
		{"trailing garbage", true, append(append([]byte{}, keyFile...), "junk"...), "trailing data"},
		{"two blocks", false, append(append([]byte{}, pubFile...), pubFile...), "trailing data"},
		{"truncated PEM", false, pubFile[:len(pubFile)-10], "malformed PEM block"},
		{"public where private needed", true, pubFile, "this is a public key"},
		{"private where public needed", false, keyFile, "this is a private key"},
		{"openssh key", true, pemOf("OPENSSH PRIVATE KEY", []byte{1}), "an OpenSSH key"},
		{"encrypted pkcs8", true, pemOf("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted keys are not supported"},
		{"certificate", false, pemOf("CERTIFICATE", []byte{1}), `PEM block is "CERTIFICATE", want "PUBLIC KEY"`},
		{"pem headers", true, withHeader, "PEM headers"},
		{"ecdsa private", true, pemOf("PRIVATE KEY", ecPriv), "not ed25519"},
		{"ecdsa public", false, pemOf("PUBLIC KEY", ecPub), "not ed25519"},
		{"garbage DER private", true, pemOf("PRIVATE KEY", []byte{0x30, 0x03, 1, 2}), "private key:"},
		{"garbage DER public", false, pemOf("PUBLIC KEY", []byte{0x30, 0x03, 1, 2}), "public key:"},
		{"public DER trailing byte", false, pemOf("PUBLIC KEY", append(append([]byte{}, pubDER.Bytes...), 0)), "public key:"},
		{"private DER trailing byte", true, pemOf("PRIVATE KEY", append(append([]byte{}, privDER.Bytes...), 0)), "private key:"},
		{"too large", true, big, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.private {
				_, err = ParsePrivateKey(tc.in)
			} else {
				_, err = ParsePublicKey(tc.in)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// Keys with white space around the block (an editor's newline) still parse.
func TestParseKeysWhiteSpace(t *testing.T) {
	priv, _ := mustGenerate(t)
	keyFile, pubFile := mustMarshal(t, priv)
	if _, err := ParsePrivateKey(append(append([]byte("\n\n"), keyFile...), "\n\n"...)); err != nil {
		t.Error(err)
	}
	if _, err := ParsePublicKey(bytes.ReplaceAll(pubFile, []byte("\n"), []byte("\r\n"))); err != nil {
		t.Error(err)
	}
}

func TestSignVerify(t *testing.T) {
	priv, pub := mustGenerate(t)
	payload := []byte(`{"board":"rpi4","version":"2"}`)
	sig, err := Sign(priv, payload)
	if err != nil {
		t.Fatal(err)
	}
	if sig.KeyID != KeyID(pub) {
		t.Errorf("key ID %s, want %s", sig.KeyID, KeyID(pub))
	}
	if err := Verify(pub, payload, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The signed message is domain-separated: a plain ed25519 signature of
	// the payload is not an update signature, and vice versa.
	if ed25519.Verify(pub, payload, sig.Sig) {
		t.Error("signature verifies without the domain prefix")
	}
	plain := Signature{KeyID: sig.KeyID, Sig: ed25519.Sign(priv, payload)}
	if err := Verify(pub, payload, plain); !errors.Is(err, ErrBadSignature) {
		t.Errorf("plain signature: %v", err)
	}
}

// Each way a signature can be wrong is refused with its own error.
func TestVerifyRefusals(t *testing.T) {
	priv, pub := mustGenerate(t)
	otherPriv, otherPub := mustGenerate(t)
	payload := []byte("manifest sha256:abcd")
	good, _ := Sign(priv, payload)
	byOther, _ := Sign(otherPriv, payload)
	tests := []struct {
		name    string
		payload []byte
		sig     Signature
		want    error
		msg     string
	}{
		{"by another key", payload, byOther, ErrOtherKey, "signed by key " + ShortKeyID(KeyID(otherPub))},
		{"tampered payload", []byte("manifest sha256:abce"), good, ErrBadSignature, "changed or the signature forged"},
		{"wrong key ID", payload, Signature{KeyID: KeyID(otherPub), Sig: good.Sig}, ErrKeyIDMismatch, "made by the trusted key"},
		{"truncated signature", payload, Signature{KeyID: good.KeyID, Sig: good.Sig[:63]}, ErrMalformed, "63 bytes, want 64"},
		{"another key claiming ours", payload, Signature{KeyID: good.KeyID, Sig: byOther.Sig}, ErrBadSignature, ""},
		{"key ID not an ID", payload, Signature{KeyID: "sha256:XY", Sig: good.Sig}, ErrMalformed, "key ID"},
		{"empty", payload, Signature{}, ErrMalformed, ""},
	}
	var seen = map[error]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(pub, tc.payload, tc.sig)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err %v, want %v with %q", err, tc.want, tc.msg)
			}
			for _, e := range []error{ErrMalformed, ErrOtherKey, ErrKeyIDMismatch, ErrBadSignature} {
				if e != tc.want && errors.Is(err, e) {
					t.Errorf("err %v is also %v", err, e)
				}
			}
		})
		seen[tc.want] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct errors, want 4", len(seen))
	}
	// Bad keys are errors, not panics.
	if err := Verify(pub[:31], payload, good); err == nil {
		t.Error("short public key accepted")
	}
	if _, err := Sign(priv[:10], payload); err == nil {
		t.Error("short private key accepted")
	}
}

func TestSignatureText(t *testing.T) {
	priv, _ := mustGenerate(t)
	sig, _ := Sign(priv, []byte("x"))
	text := sig.String()
	if len(text) != SignatureTextLen || !strings.HasPrefix(text, "ed25519:sha256:") {
		t.Fatalf("text %q (%d bytes)", text, len(text))
	}
	got, err := ParseSignature(text)
	if err != nil || got.KeyID != sig.KeyID || !bytes.Equal(got.Sig, sig.Sig) {
		t.Fatalf("round trip: %v", err)
	}
	mt, err := sig.MarshalText()
	if err != nil || string(mt) != text {
		t.Fatalf("MarshalText: %q %v", mt, err)
	}
	var u Signature
	if err := u.UnmarshalText(mt); err != nil || u.KeyID != sig.KeyID {
		t.Fatalf("UnmarshalText: %v", err)
	}
	if _, err := (Signature{KeyID: sig.KeyID}).MarshalText(); err == nil {
		t.Error("MarshalText of an empty signature")
	}

	b64 := text[len(text)-88:]
	id := sig.KeyID
	tests := []struct{ name, in, want string }{
		{"empty", "", "does not start with"},
		{"other algorithm", "rsa:" + id + ":" + b64, `does not start with "ed25519:"`},
		{"upper-case algorithm", "ED25519:" + id + ":" + b64, "does not start with"},
		{"no signature field", "ed25519:" + strings.TrimPrefix(id, "sha256:"), "want ed25519:KEYID:BASE64"},
		{"short key ID", "ed25519:sha256:abcd:" + b64, "key ID"},
		{"upper-case hex", "ed25519:" + strings.ToUpper(id[:9]) + id[9:] + ":" + b64, "key ID"},
		{"other hash", "ed25519:sha512:" + id[7:] + ":" + b64, "key ID"},
		{"truncated", text[:len(text)-4], "63 bytes, want 64"},
		{"unpadded", text[:len(text)-2], "signature bytes"},
		{"trailing newline", text + "\n", "not canonical"},
		{"embedded newline", text[:100] + "\n" + text[100:], "not canonical"},
		{"trailing space", text + " ", "signature bytes"},
		{"leading space", " " + text, "does not start with"},
		{"url base64", "ed25519:" + id + ":-" + b64[1:], "signature bytes"},
		{"extra field", text + ":x", "key ID"},
		{"too long", text + strings.Repeat("A", 300), "at most 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSignature(tc.in)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrMalformed with %q", err, tc.want)
			}
		})
	}
}

func FuzzParsePublicKey(f *testing.F) {
	priv, _ := mustGenerate(f)
	keyFile, pubFile := mustMarshal(f, priv)
	f.Add(pubFile)
	f.Add(keyFile)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := ParsePublicKey(data)
		if err != nil {
			return
		}
		// Whatever parses is a canonical key that re-encodes and re-parses.
		again, err := MarshalPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if p2, err := ParsePublicKey(again); err != nil || !p2.Equal(pub) {
			t.Fatalf("re-parse: %v", err)
		}
		if b, _ := pem.Decode(bytes.TrimSpace(data)); b == nil || !bytes.Equal(b.Bytes, pkixDER(pub)) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	priv, _ := mustGenerate(f)
	keyFile, pubFile := mustMarshal(f, priv)
	f.Add(keyFile)
	f.Add(pubFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePrivateKey(data)
		if err != nil {
			return
		}
		if _, err := Sign(p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	priv, _ := mustGenerate(f)
	sig, _ := Sign(priv, []byte("x"))
	f.Add(sig.String())
	f.Add("ed25519:sha256::")
	f.Add("ed25519:" + sig.KeyID + ":====")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSignature(text)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// Strict: exactly one text per signature.
		if s.String() != text {
			t.Fatalf("parsed %q, prints %q", text, s.String())
		}
		if len(s.Sig) != ed25519.SignatureSize || !validKeyID(s.KeyID) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
