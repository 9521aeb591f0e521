package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
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
