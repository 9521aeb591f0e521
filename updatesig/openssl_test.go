package updatesig

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Keys interoperate with openssl: it reads ours, we read its.
func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("openssl", args...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		return out
	}
	theirs := filepath.Join(dir, "o.key")
	run("genpkey", "-algorithm", "ed25519", "-out", theirs)
	keyFile, _ := os.ReadFile(theirs)
	priv, err := ParsePrivateKey(keyFile)
	if err != nil {
		t.Fatalf("openssl's private key: %v", err)
	}
	pub, err := ParsePublicKey(run("pkey", "-in", theirs, "-pubout"))
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("openssl's public key: %v", err)
	}

	ours, _ := mustGenerate(t)
	keyFile, pubFile := mustMarshal(t, ours)
	mine := filepath.Join(dir, "m.key")
	os.WriteFile(mine, keyFile, 0o600)
	if got := run("pkey", "-in", mine, "-pubout"); !bytes.Equal(got, pubFile) {
		t.Errorf("openssl derives\n%s\nwe wrote\n%s", got, pubFile)
	}
}
