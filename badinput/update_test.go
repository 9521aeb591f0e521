package badinput

import "testing"

// rfs update refuses, before anything is written, what it cannot update:
// the runner checks the scratch directory (and the image in it) is
// unchanged.
func TestUpdate(t *testing.T) {
	runCases(t, []badCase{
		{name: "no arguments", args: []string{"update"}, want: []string{"need IMAGE|DEVICE and REF"}},
		{name: "one argument", args: []string{"update", "{dir}/x.img"}, want: []string{"need IMAGE|DEVICE and REF", "got 1"}},
		{name: "missing image", args: []string{"update", "missing.img", "oci-layout:rel:v2"}, want: []string{"missing.img", "no such file"}},
		{name: "image is a directory", args: []string{"update", "d", "oci-layout:rel:v2"}, setup: mkdir("d"), want: []string{"neither an image file nor a block device"}},
		{name: "image is a fifo", args: []string{"update", "f", "oci-layout:rel:v2"}, setup: mkfifo("f"), want: []string{"neither an image file nor a block device"}},
		{name: "image without slots", args: []string{"update", "{image}", "oci-layout:{dir}/rel:v2"},
			want: []string{"no A/B slots", "update: in rfs.yaml, or rfs build --slots"}},
		{name: "not an image", args: []string{"update", "junk.img", "oci-layout:rel:v2"},
			setup: func(t tester, dir string) { writeFile(t, dir, "junk.img", "not a disk image\n") }, want: []string{"junk.img"}},
	})
}
