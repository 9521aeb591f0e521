package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
)

// rfs inspect shows each partition's role from the layout (MBR: layers as
// logical 5 and 6, data at 3, where positions would say otherwise), and
// rfs diff and commit read the same partitions.
func TestInspectRoles(t *testing.T) {
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
		{Role: image.RoleBoot}, {Role: image.RoleRoot, Tree: imagetest.Tree(t, map[string]string{"/base": "r"})}, {Role: image.RoleData},
		{Role: image.RoleLayer, Layer: 1, Logical: true, Tree: imagetest.Tree(t, map[string]string{"/one": "1"})},
		{Role: image.RoleLayer, Layer: 2, Logical: true, Tree: imagetest.Tree(t, map[string]string{"/two": "2"})},
	}})
	out, err := execute(t, "inspect", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^PART +ROLE +NAME +START +SIZE +FS +POLICY +PARTUUID$`,
		`(?m)^1 +boot +rfs-boot .* vfat +fit +1234abcd-01$`,
		`(?m)^3 +data +rfs-data .* ext4 +fit +1234abcd-03$`,
		`(?m)^5 +layer 1 +rfs-layer-1 .* squashfs +fit +1234abcd-05$`,
		`(?m)^6 +layer 2 +rfs-layer-2 .* squashfs +fit +1234abcd-06$`,
		`(?m)^rfs-layer-2 +.* sha256:`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("inspect output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "inferred") {
		t.Errorf("roles said inferred:\n%s", out)
	}
	out, err = execute(t, "inspect", "--json", path)
	var in Inspection
	if err != nil || json.Unmarshal([]byte(out), &in) != nil || in.RolesInferred || len(in.Partitions) != 5 ||
		in.Partitions[4].Role != image.RoleLayer || in.Partitions[4].Layer != 2 || in.Partitions[2].FS != "ext4" {
		t.Errorf("inspect --json: %v\n%s", err, out)
	}
	if out, err = execute(t, "diff", path); err != nil || out != "" {
		t.Errorf("diff of a never-booted image: %q %v", out, err)
	}
}

// An image from an rfs before the layout: roles by position, said so.
func TestInspectRolesInferred(t *testing.T) {
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
		{Role: image.RoleBoot}, {Role: image.RoleRoot}, {Role: image.RoleLayer, Layer: 1}, {Role: image.RoleData},
	}, Edit: func(m *image.Meta) { m.Layout = nil }})
	out, err := execute(t, "inspect", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{`(?m)^3 +layer 1 +rfs-layer-1 .* - +- +1234abcd-03$`, `(?m)^4 +data +rfs-data `, "roles inferred from partition names"} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("inspect output lacks %s:\n%s", want, out)
		}
	}
}
