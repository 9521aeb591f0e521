package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/updatesig"
)

// TestPushLayout: rfs push to an OCI layout prints the digest and a line
// per part; --version changes the digest.
func TestPushLayout(t *testing.T) {
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
		{Role: image.RoleBoot, Files: map[string][]byte{image.KernelFile: []byte("k"), image.InitrdFile: []byte("i"), image.CmdlineFile: []byte("c")}},
		{Role: image.RoleRoot, Tree: imagetest.Tree(t, map[string]string{"/base": "r"})}, {Role: image.RoleData},
	}})
	dir := filepath.Join(t.TempDir(), "oci")
	out, err := execute(t, "push", path, "oci-layout:"+dir+":v1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	digest := regexp.MustCompile(`(?m)^digest: (sha256:[0-9a-f]{64})$`)
	for _, want := range []string{
		digest.String(),
		`(?m)^PART +ROLE +SIZE +DIGEST$`,
		`(?m)^kernel +kernel +1 bytes +sha256:`,
		`(?m)^boot-files +boot-files +.* sha256:`,
		`(?m)^root +root +.* sha256:`,
		`rfs: pushed .* \(qemu-arm64 arm64, version 0, build test\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("push output lacks %s:\n%s", want, out)
		}
	}
	out2, err := execute(t, "push", path, "oci-layout:"+dir+":v2", "--version", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, out2)
	}
	if a, b := digest.FindStringSubmatch(out), digest.FindStringSubmatch(out2); a == nil || b == nil || a[1] == b[1] {
		t.Errorf("--version 2 kept the digest:\n%s\n%s", out, out2)
	}
	if _, err := execute(t, "push", path); err == nil {
		t.Error("push without REF accepted")
	}
}

// TestPushSigned: rfs keygen then rfs push --sign-key gives a release that
// verifies with the public key; the public key given as --sign-key is
// refused before anything is written.
func TestPushSigned(t *testing.T) {
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
		{Role: image.RoleBoot, Files: map[string][]byte{image.KernelFile: []byte("k"), image.InitrdFile: []byte("i"), image.CmdlineFile: []byte("c")}},
		{Role: image.RoleRoot, Tree: imagetest.Tree(t, map[string]string{"/base": "r"})}, {Role: image.RoleData},
	}})
	dir := t.TempDir()
	keys := filepath.Join(dir, "prod")
	if out, err := execute(t, "keygen", "-o", keys); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ref := "oci-layout:" + filepath.Join(dir, "oci") + ":v1"
	if out, err := execute(t, "push", path, ref, "--sign-key", keys+".pub"); err == nil || !strings.Contains(err.Error(), "signing needs the private key") {
		t.Errorf("--sign-key with the public key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci")); !os.IsNotExist(err) {
		t.Errorf("a refused push wrote the layout: %v", err)
	}
	if out, err := execute(t, "push", path, ref, "--sign-key", keys+".key"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pub, err := updatesig.ReadPublicKeyFile(keys + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Inspect(context.Background(), ref, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(pub); err != nil {
		t.Errorf("the pushed release does not verify with the key pair's public key: %v", err)
	}
}
