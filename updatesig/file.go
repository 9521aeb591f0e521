package updatesig

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
)

// ReadPrivateKeyFile reads and parses a private key file (rfs push
// --sign-key). Errors name the file.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// ReadPublicKeyFile reads and parses a public key file (rfs.yaml's
// update: {public_key: FILE}, or the copy in an image). Errors name the file.
func ReadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// readKeyFile reads at most MaxKeyFile+1 bytes of a regular file, so that
// a device node or a huge file is refused without reading it all. The type
// is checked before opening too: opening a named pipe would block.
func readKeyFile(path string) ([]byte, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file (%v)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes: not a key", path, MaxKeyFile)
	}
	return data, nil
}
