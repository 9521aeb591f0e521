package bundle

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rfsbuild/rfs/updatesig"
)

// A release signed with one key verifies with it and with nothing else;
// an unsigned one and one whose config was re-signed by another key are
// refused, each with its own error.
func TestSignedRelease(t *testing.T) {
	img := testImage(t)
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	push := func(tag string, s Signer) *Bundle {
		ref := LayoutPrefix + filepath.Join(dir, "layout") + ":" + tag
		if _, err := Push(ctx, img, ref, Options{Signer: s}); err != nil {
			t.Fatal(err)
		}
		b, err := Inspect(ctx, ref, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signed := push("signed", SignWith(priv))
	if err := signed.Verify(pub); err != nil {
		t.Errorf("signed release, right key: %v", err)
	}
	for _, c := range []struct {
		name string
		b    *Bundle
		want error
	}{
		{"unsigned", push("unsigned", nil), ErrUnsigned},
		{"other key", push("other", SignWith(otherPriv)), updatesig.ErrOtherKey},
	} {
		if err := c.b.Verify(pub); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	if err := signed.Verify(otherPub); !errors.Is(err, updatesig.ErrOtherKey) {
		t.Errorf("signed release, another public key: %v, want ErrOtherKey", err)
	}
	tampered := *signed
	tampered.RawConfig = append([]byte(nil), signed.RawConfig...)
	tampered.RawConfig[len(tampered.RawConfig)-2] ^= 1
	if err := tampered.Verify(pub); !errors.Is(err, updatesig.ErrBadSignature) {
		t.Errorf("changed config: %v, want ErrBadSignature", err)
	}
}
