package bundle

import (
	"crypto/ed25519"
	"fmt"

	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/updatesig"
)

// ErrUnsigned is a release without a signature.
var ErrUnsigned = release.ErrUnsigned

// SignWith is the Signer for a private update key (rfs keygen): an
// updatesig signature over the config blob, which lists every part's
// digest, so it covers the whole release.
func SignWith(priv ed25519.PrivateKey) Signer {
	return func(config []byte) (string, error) {
		sig, err := updatesig.Sign(priv, config)
		if err != nil {
			return "", fmt.Errorf("sign the release: %w", err)
		}
		return sig.String(), nil
	}
}

// Verify checks b's signature over its config with pub. Inspect has
// already tied the config to every part's digest; a device uses no byte
// of a release before this returns nil.
func (b *Bundle) Verify(pub ed25519.PublicKey) error { return b.VerifySignature(pub) }
