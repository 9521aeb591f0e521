//go:build unix

package updatesig

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := mustGenerate(t)
	keyFile, pubFile := mustMarshal(t, priv)
	key, pubPath := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	os.WriteFile(key, keyFile, 0o600)
	os.WriteFile(pubPath, pubFile, 0o644)
	if got, err := ReadPrivateKeyFile(key); err != nil || !got.Equal(priv) {
		t.Fatalf("ReadPrivateKeyFile: %v", err)
	}
	if got, err := ReadPublicKeyFile(pubPath); err != nil || !got.Equal(pub) {
		t.Fatalf("ReadPublicKeyFile: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, MaxKeyFile+1), 0o644)
	for _, tc := range []struct {
		name, path, want string
		private          bool
	}{
		{"missing", filepath.Join(dir, "none.pub"), "no such file", false},
		{"directory", dir, "not a regular file", false},
		{"device", "/dev/zero", "not a regular file", true},
		{"named pipe", fifo, "not a regular file", true},
		{"too large", big, "larger than 65536 bytes", false},
		{"swapped", pubPath, pubPath + ": this is a public key", true},
		{"swapped, public", key, key + ": this is a private key", false},
	} {
		var err error
		if tc.private {
			_, err = ReadPrivateKeyFile(tc.path)
		} else {
			_, err = ReadPublicKeyFile(tc.path)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
