package project

import (
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/apps"
)

func TestParseAppsAndURoot(t *testing.T) {
	f, err := Parse([]byte(`userland: u-root
uroot_commands: [ls, exp/ed]
apps:
  - path: ./cmd/hello
    service: true
  - path: example.com/x/cmd/y@v1.0.0
    name: why
`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.URootCommands, []string{"ls", "exp/ed"}) {
		t.Errorf("uroot_commands %q", f.URootCommands)
	}
	want := []apps.App{{Path: "./cmd/hello", Service: true}, {Path: "example.com/x/cmd/y@v1.0.0", Name: "why"}}
	if !slices.Equal(f.Apps, want) {
		t.Errorf("apps %+v", f.Apps)
	}
	if _, err := Parse([]byte("apps:\n  - path: ./x\n    restart: always\n")); err == nil {
		t.Error("an unknown app key was accepted")
	}
}
