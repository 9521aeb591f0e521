package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/updatesig"
)

// defaultKeyName is rfs keygen's NAME without -o.
const defaultKeyName = "rfs-update"

func newKeygenCmd() *cobra.Command {
	name := defaultKeyName
	cmd := &cobra.Command{
		Use:   "keygen [-o NAME]",
		Short: "Make an update signing key pair: NAME.key (private) and NAME.pub (public)",
		Long: `Generate an ed25519 key pair for signing updates, written to the current
directory (or where -o points): NAME.key, the private key (mode 0600, PEM
PKCS#8), and NAME.pub, the public key (PEM PKIX). NAME defaults to
"` + defaultKeyName + `". It prints the key's ID, "sha256:" and the SHA-256 of the
public key, which signatures and device status name.

Keep NAME.key secret: whoever holds it can publish updates your devices will
install. rfs push signs with it:

  rfs push IMAGE REF --sign-key NAME.key

Put NAME.pub in the image through rfs.yaml; devices built with it refuse
updates that are unsigned or signed by any other key:

  update: {public_key: NAME.pub}

rfs keygen never overwrites: it refuses when NAME.key or NAME.pub exists.`,
		Example: `  rfs keygen                        # writes rfs-update.key and rfs-update.pub
  rfs keygen -o keys/prod           # writes keys/prod.key and keys/prod.pub

  # then, in rfs.yaml:
  #   update: {public_key: rfs-update.pub}
  # and to publish a signed release:
  rfs push out/rpi4.img registry.example/kiosk:v2 --sign-key rfs-update.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeygen(cmd, name)
		},
	}
	cmd.Flags().StringVarP(&name, "output", "o", defaultKeyName, "NAME of the key files, without .key/.pub (may include a directory)")
	return cmd
}

// runKeygen is rfs keygen: check NAME, generate, write both files.
func runKeygen(cmd *cobra.Command, name string) error {
	keyPath, pubPath, err := keyPaths(name)
	if err != nil {
		return err
	}
	priv, pub, err := updatesig.Generate()
	if err != nil {
		return err
	}
	keyPEM, err := updatesig.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	pubPEM, err := updatesig.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeKeyPair(keyPath, keyPEM, pubPath, pubPEM); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "key ID %s\n", updatesig.KeyID(pub))
	fmt.Fprintf(out, "wrote %s (private, mode 0600: keep it secret; sign with rfs push IMAGE REF --sign-key %s)\n", keyPath, keyPath)
	fmt.Fprintf(out, "wrote %s (public: put it in rfs.yaml as update: {public_key: %s})\n", pubPath, pubPath)
	return nil
}

// keyPaths checks -o NAME and returns NAME.key and NAME.pub: the
// directory must exist and neither file may.
func keyPaths(name string) (string, string, error) {
	base := filepath.Base(name)
	switch {
	case name == "":
		return "", "", errors.New("-o: empty NAME")
	case strings.HasSuffix(name, "/") || base == "." || base == "..":
		return "", "", fmt.Errorf("-o %s: give a file NAME (without .key/.pub), such as %s", name, filepath.Join(name, defaultKeyName))
	case strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".pub"):
		trimmed := name[:len(name)-4]
		return "", "", fmt.Errorf("-o %s: give NAME without .key/.pub (-o %s writes %s.key and %s.pub)", name, trimmed, trimmed, trimmed)
	}
	dir := filepath.Dir(name)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("-o %s: directory %s does not exist (create it first)", name, dir)
	case err != nil:
		return "", "", fmt.Errorf("-o %s: %w", name, err)
	case !st.IsDir():
		return "", "", fmt.Errorf("-o %s: %s is not a directory", name, dir)
	}
	keyPath, pubPath := name+".key", name+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", existsError(p)
		}
	}
	return keyPath, pubPath, nil
}

func existsError(path string) error {
	return fmt.Errorf("%s exists; choose another -o or remove it", path)
}

// writeKeyPair writes both files without ever replacing one: each goes to
// a hidden temporary file (mode set, synced), then is hard-linked to its
// name, which fails if the name exists (O_EXCL semantics, race-free). The
// private key is linked first; if the public key cannot be, the private
// key just linked is removed again. An interruption leaves at most hidden
// ".NAME.key.tmp-*" files, never a NAME.key or NAME.pub with partial content.
func writeKeyPair(keyPath string, keyPEM []byte, pubPath string, pubPEM []byte) error {
	keyTmp, err := writeTemp(keyPath, keyPEM, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(keyTmp)
	pubTmp, err := writeTemp(pubPath, pubPEM, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(pubTmp)
	if err := linkNew(keyTmp, keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := linkNew(pubTmp, pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	syncDir(filepath.Dir(keyPath))
	return nil
}

// writeTemp writes data to a new hidden file next to path (created with
// O_EXCL, mode 0600 from the start) and gives it perm.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// linkNew gives tmp (holding data) the name path, refusing if path
// exists. On a filesystem without hard links (FAT: a USB stick is a
// fine home for a key) it creates path with O_EXCL and writes data
// there: one small write, synced, removed again on failure.
func linkNew(tmp, path string, data []byte, perm fs.FileMode) error {
	err := os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return existsError(path)
	}
	if err == nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return existsError(path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the new names durable; best effort, as some filesystems
// refuse fsync on a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
