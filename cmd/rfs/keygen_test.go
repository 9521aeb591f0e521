package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/updatesig"
)

// dirNames lists dir's entries, to see that nothing else (no temp file)
// was left.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.Mkdir("keys", 0o755)
	for _, tc := range []struct {
		args      []string
		key, pub  string
		dir       string
		wantNames string
	}{
		{nil, "rfs-update.key", "rfs-update.pub", ".", "keys rfs-update.key rfs-update.pub"},
		{[]string{"-o", "keys/prod"}, "keys/prod.key", "keys/prod.pub", "keys", "prod.key prod.pub"},
	} {
		out, err := execute(t, append([]string{"keygen"}, tc.args...)...)
		if err != nil {
			t.Fatalf("rfs keygen %v: %v\n%s", tc.args, err, out)
		}
		checkKeyFile(t, tc.key, 0o600)
		checkKeyFile(t, tc.pub, 0o644)
		keyPEM, _ := os.ReadFile(tc.key)
		pubPEM, _ := os.ReadFile(tc.pub)
		priv, err := updatesig.ParsePrivateKey(keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := updatesig.ParsePublicKey(pubPEM)
		if err != nil || !pub.Equal(priv.Public()) {
			t.Fatalf("%s does not hold %s's public key: %v", tc.pub, tc.key, err)
		}
		for _, want := range []string{"key ID " + updatesig.KeyID(pub) + "\n", "wrote " + tc.key + " (private", "--sign-key " + tc.key, "wrote " + tc.pub, "public_key: " + tc.pub} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if got := strings.Join(dirNames(t, tc.dir), " "); got != tc.wantNames {
			t.Errorf("%s holds %s, want %s", tc.dir, got, tc.wantNames)
		}
	}
}

func checkKeyFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want a regular file with %v", path, st.Mode(), mode)
	}
}

// rfs keygen never overwrites, and a refusal leaves the directory as it was.
func TestKeygenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func()
		args  []string
		want  string
	}{
		{"key exists", func() { os.WriteFile("rfs-update.key", []byte("old"), 0o600) }, nil, "rfs-update.key exists; choose another -o or remove it"},
		{"pub exists", func() { os.WriteFile("rfs-update.pub", []byte("old"), 0o644) }, nil, "rfs-update.pub exists; choose another -o or remove it"},
		{"dangling symlink at key", func() { os.Symlink("nowhere", "k.key") }, []string{"-o", "k"}, "k.key exists"},
		{"directory at pub", func() { os.Mkdir("k.pub", 0o755) }, []string{"-o", "k"}, "k.pub exists"},
		{"missing directory", nil, []string{"-o", "nodir/k"}, "-o nodir/k: directory nodir does not exist"},
		{"directory is a file", func() { os.WriteFile("f", nil, 0o644) }, []string{"-o", "f/k"}, "f is not a directory"},
		{"name with .key", nil, []string{"-o", "prod.key"}, "give NAME without .key/.pub (-o prod writes prod.key and prod.pub)"},
		{"name with .pub", nil, []string{"-o", "prod.pub"}, "without .key/.pub"},
		{"empty name", nil, []string{"-o", ""}, "empty NAME"},
		{"directory as name", func() { os.Mkdir("d", 0o755) }, []string{"-o", "d/"}, "give a file NAME"},
		{"dot", nil, []string{"-o", "."}, "give a file NAME"},
		{"argument", nil, []string{"prod"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if tc.setup != nil {
				tc.setup()
			}
			before := strings.Join(dirNames(t, "."), " ")
			out, err := execute(t, append([]string{"keygen"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q\n%s", err, tc.want, out)
			}
			if after := strings.Join(dirNames(t, "."), " "); after != before {
				t.Errorf("directory changed: %q, was %q", after, before)
			}
			if b, err := os.ReadFile("rfs-update.key"); err == nil && string(b) != "old" {
				t.Error("rfs-update.key overwritten")
			}
		})
	}
}

// A name that appears between the check and the link (another rfs keygen
// racing) is not replaced, and the half of the pair already written is
// taken back.
func TestKeygenRace(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	os.WriteFile(pub, []byte("theirs"), 0o644)
	err := writeKeyPair(key, []byte("key"), pub, []byte("pub"))
	if err == nil || !strings.Contains(err.Error(), "k.pub exists") {
		t.Fatalf("err %v", err)
	}
	if got := strings.Join(dirNames(t, dir), " "); got != "k.pub" {
		t.Errorf("left %s", got)
	}
	if b, _ := os.ReadFile(pub); string(b) != "theirs" {
		t.Errorf("k.pub overwritten: %q", b)
	}
}
