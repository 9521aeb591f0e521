package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/hostos"
)

// On macOS and Windows, the commands that need Linux refuse before doing
// anything, and say why; the others run.
func TestRequireLinux(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.img")
	for _, tc := range []struct {
		goos string
		args []string
		want string // "": not a NeedsLinuxError
	}{
		{"darwin", []string{"flash", "--list"}, "rfs flash needs Linux (it finds removable disks"},
		{"windows", []string{"flash", "a.img", "/dev/sdz"}, "this host runs Windows"},
		{"darwin", []string{"reset", "--now", missing}, "rfs reset --now needs Linux (it mounts the data partition's ext4"},
		{"darwin", []string{"reset", missing}, ""},
		{"linux", []string{"reset", "--now", missing}, ""},
	} {
		root := newRoot()
		requireLinux(root, tc.goos)
		root.SetArgs(tc.args)
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		var nl *hostos.NeedsLinuxError
		switch {
		case tc.want == "" && errors.As(err, &nl):
			t.Errorf("%s %v: %v", tc.goos, tc.args, err)
		case tc.want != "" && (!errors.As(err, &nl) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %v: %v, want %q", tc.goos, tc.args, err, tc.want)
		}
	}
}
