package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/qemu"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// Every command has a short description and examples in its help.
func TestHelpHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		if c.Short == "" || c.Example == "" {
			t.Errorf("%q lacks a short description or examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
}

func TestBoards(t *testing.T) {
	out, err := execute(t, "boards")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"qemu-arm64", "qemu-amd64", "arm64", "amd64", "(default)",
		"-M raspi4b (--machine raspi3b)", "none (--machine raspi4b, raspi3b)"} {
		if !strings.Contains(out, want) {
			t.Errorf("rfs boards lacks %q:\n%s", want, out)
		}
	}
}

func TestInitThenBuildFlagsOverride(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(dir)
	if _, err := execute(t, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, "init"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init = %v", err)
	}
	cmd, flags := buildCommand()
	cmd.ParseFlags([]string{"--board", "qemu-amd64", "--size", "1G"})
	cfg, err := resolveBuild(cmd, *flags)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Board.Name != "qemu-amd64" || cfg.Size != 1<<30 || cfg.Hostname != "rfs" || cfg.Output != filepath.Join("out", "qemu-amd64.img") {
		t.Fatalf("resolved config = %+v", cfg)
	}
}

func TestBuildBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("board: qemu-arm64\nboard_typo: 1\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"build", "--board", "rpi9"}, `unknown board "rpi9"`},
		{[]string{"build", "--config", bad}, `line 2: unknown key "board_typo"`},
		{[]string{"build", "--size", "lots"}, `--size "lots": not a size`},
		{[]string{"build", "--owner", "root"}, "uid:gid"},
		{[]string{"run", filepath.Join(dir, "missing.img")}, "no such file"},
		{[]string{"run", bad}, "not an rfs image"},
		{[]string{"squashfs", dir}, "missing -o"},
	}
	for _, tt := range tests {
		_, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rfs %s: error %v, want %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

// layers: in rfs.yaml are relative to the file, in order; --layer replaces
// them.
func TestBuildLayersResolve(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "rfs.yaml")
	os.WriteFile(cfgFile, []byte("layers:\n  - a.sqfs\n  - /abs/b.sqfs\n"), 0o644)
	cmd, flags := buildCommand()
	cmd.ParseFlags([]string{"--config", cfgFile})
	cfg, err := resolveBuild(cmd, *flags)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "a.sqfs"), "/abs/b.sqfs"}; !slices.Equal(cfg.Layers, want) {
		t.Errorf("layers from the file = %q, want %q", cfg.Layers, want)
	}
	cmd, flags = buildCommand()
	cmd.ParseFlags([]string{"--config", cfgFile, "--layer", "x.sqfs", "--layer", "y.sqfs"})
	if cfg, err = resolveBuild(cmd, *flags); err != nil {
		t.Fatal(err)
	}
	if want := []string{"x.sqfs", "y.sqfs"}; !slices.Equal(cfg.Layers, want) {
		t.Errorf("layers from flags = %q, want %q", cfg.Layers, want)
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"qemu", "-m", "1G"}, "qemu -m 1G"},
		{[]string{"-append", "console=ttyAMA0 rfs.upper=data"}, "-append 'console=ttyAMA0 rfs.upper=data'"},
		{[]string{"it's", ""}, `'it'\''s' ''`},
		{[]string{"a;b", "$x"}, `'a;b' '$x'`},
	} {
		if got := shellQuote(tc.args); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestSplitImageArg(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, "x:")
	if err := os.MkdirAll(filepath.Join(odd, "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, img, path string
		isImg         bool
		err           string
	}{
		{img + ":/etc/passwd", img, "/etc/passwd", true, ""},
		{img + ":/", img, "/", true, ""},
		{img + ":etc/passwd", "", "", false, "must be absolute"},
		{dir + "/missing.img:/etc", "", "", false, ""},
		{odd + "/y", "", "", false, ""}, // a host path holding ":/"
		{"./local", "", "", false, ""},
		{dir + ":/etc", "", "", false, ""}, // a directory is no image
	} {
		i, p, ok, err := splitImageArg(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("splitImageArg(%q) = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || i != c.img || p != c.path || ok != c.isImg {
			t.Errorf("splitImageArg(%q) = %q %q %v %v", c.in, i, p, ok, err)
		}
	}
}

// TestMachineHint: a QEMU without raspi4b gets the board's machine that
// needs no newer QEMU as a way out; other errors pass as they are.
func TestMachineHint(t *testing.T) {
	rpi4, _ := boards.Lookup("rpi4")
	rpi3, _ := boards.Lookup("rpi3")
	noMachine := fmt.Errorf("probe: %w", qemu.ErrNoMachine)
	other := errors.New("qemu-system-aarch64 not found")
	for _, tt := range []struct {
		board boards.Board
		err   error
		want  string
	}{
		{rpi4, noMachine, "rfs run --machine raspi3b 'my card.img'"},
		{rpi3, noMachine, "probe: the installed QEMU lacks the machine"},
		{rpi4, other, "qemu-system-aarch64 not found"},
		{rpi4, nil, ""},
	} {
		got := machineHint(tt.board, "my card.img", tt.err)
		if tt.want == "" && got != nil || tt.want != "" && (got == nil || !strings.HasSuffix(got.Error(), tt.want)) {
			t.Errorf("machineHint(%s, %v) = %v, want ...%q", tt.board.Name, tt.err, got, tt.want)
		}
	}
}
