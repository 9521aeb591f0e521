package project

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

func TestResolveBuild(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(v string) func(string) string { return func(string) string { return v } }
	tests := []struct {
		name    string
		yaml    string // "" : no project file
		flags   BuildFlags
		changed []string
		check   func(t *testing.T, c *builder.Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c *builder.Config) {
			if c.Board.Name != "qemu-arm64" || c.Output != filepath.Join("out", "qemu-arm64.img") || c.Epoch != builder.DefaultEpoch ||
				c.Emit != "" || !reflect.DeepEqual(c.Owner, &rootfs.Owner{}) {
				t.Errorf("%+v", c)
			}
		}},
		{name: "file values, relative to it", yaml: "board: qemu-amd64\nkernel: k/Image\nlayers: [a.sqfs, /abs/b.sqfs]\nfiles: [f, 'g:/opt']\noutput: o.img\nsize: 1G\ndata_size: 32M\nepoch: 5\nlogin: true\n",
			check: func(t *testing.T, c *builder.Config) {
				if c.Board.Name != "qemu-amd64" || c.Kernel != filepath.Join(dir, "k/Image") || c.Output != filepath.Join(dir, "o.img") ||
					c.Size != 1<<30 || c.DataSize != 32<<20 || c.Epoch != 5 || !c.Login {
					t.Errorf("%+v", c)
				}
				if want := []string{filepath.Join(dir, "a.sqfs"), "/abs/b.sqfs"}; !slices.Equal(c.Layers, want) {
					t.Errorf("layers %q, want %q", c.Layers, want)
				}
				if want := []builder.Files{{Src: filepath.Join(dir, "f"), Dest: "/"}, {Src: filepath.Join(dir, "g"), Dest: "/opt"}}; !slices.Equal(c.Files, want) {
					t.Errorf("files %+v, want %+v", c.Files, want)
				}
			}},
		{name: "flags win, as given", yaml: "board: qemu-amd64\nlayers: [a.sqfs]\nhostname: f\noutput: o.img\n",
			flags: BuildFlags{Board: "rpi4", Layers: []string{"x.sqfs"}, Hostname: "h", Output: "x.img", Epoch: 7}, changed: []string{"board", "layer", "hostname", "output", "epoch"},
			check: func(t *testing.T, c *builder.Config) {
				if c.Board.Name != "rpi4" || !slices.Equal(c.Layers, []string{"x.sqfs"}) || c.Hostname != "h" || c.Output != "x.img" || c.Epoch != 7 {
					t.Errorf("%+v", c)
				}
				if c.Origin["hostname"] != "--hostname" || c.Origin["epoch"] != "--epoch" {
					t.Errorf("origin %v", c.Origin)
				}
			}},
		{name: "origin names the file's line", yaml: "board: qemu-arm64\ndata_size: 32M\n", check: func(t *testing.T, c *builder.Config) {
			if !strings.HasSuffix(c.Origin["data_size"], ".yaml:2: data_size") {
				t.Errorf("origin %q", c.Origin["data_size"])
			}
		}},
		{name: "emit alone: no image", yaml: "output: o.img\n", flags: BuildFlags{Emit: "art"}, changed: []string{"emit"},
			check: func(t *testing.T, c *builder.Config) {
				if c.Output != "" || c.Emit != "art" {
					t.Errorf("output %q emit %q", c.Output, c.Emit)
				}
			}},
		{name: "emit and -o", flags: BuildFlags{Emit: "art", Output: "x.img"}, changed: []string{"emit", "output"},
			check: func(t *testing.T, c *builder.Config) {
				if c.Output != "x.img" || c.Emit != "art" {
					t.Errorf("output %q emit %q", c.Output, c.Emit)
				}
			}},
		{name: "owner keep", flags: BuildFlags{Owner: "keep"}, changed: []string{"owner"}, check: func(t *testing.T, c *builder.Config) {
			if c.Owner != nil {
				t.Errorf("owner %+v", c.Owner)
			}
		}},
		{name: "owner numbers", yaml: "owner: '5:6'\n", check: func(t *testing.T, c *builder.Config) {
			if *c.Owner != (rootfs.Owner{UID: 5, GID: 6}) {
				t.Errorf("owner %+v", c.Owner)
			}
		}},
		{name: "SOURCE_DATE_EPOCH", flags: BuildFlags{Getenv: env("99")}, check: func(t *testing.T, c *builder.Config) {
			if c.Epoch != 99 || c.Origin["epoch"] != "SOURCE_DATE_EPOCH" {
				t.Errorf("epoch %d from %q", c.Epoch, c.Origin["epoch"])
			}
		}},
		{name: "volumes", flags: BuildFlags{Volumes: []string{"/var/lib/app"}}, changed: []string{"volume"}, check: func(t *testing.T, c *builder.Config) {
			if !slices.Equal(c.Volumes, []builder.Volume{{Name: "var-lib-app", Path: "/var/lib/app"}}) {
				t.Errorf("volumes %+v", c.Volumes)
			}
		}},
		{name: "bad board", flags: BuildFlags{Board: "rpi9"}, changed: []string{"board"}, wantErr: `unknown board "rpi9"`},
		{name: "bad size flag", flags: BuildFlags{Size: "lots"}, changed: []string{"size"}, wantErr: `--size "lots": not a size`},
		{name: "bad data_size in the file", yaml: "data_size: 1MB\n", wantErr: `.yaml:1: data_size "1MB": "MB" is ambiguous`},
		{name: "bad owner", flags: BuildFlags{Owner: "root"}, changed: []string{"owner"}, wantErr: `owner "root": want "uid:gid"`},
		{name: "bad volume", yaml: "volumes: [relative]\n", wantErr: `volume "relative"`},
		{name: "bad SOURCE_DATE_EPOCH", flags: BuildFlags{Getenv: env("-1")}, wantErr: `SOURCE_DATE_EPOCH "-1"`},
		{name: "unknown key", yaml: "board_typo: 1\n", wantErr: `unknown key "board_typo"`},
		{name: "kernel a device", flags: BuildFlags{Kernel: "/dev/null"}, changed: []string{"kernel"}, wantErr: "--kernel"},
		{name: "layer in the file a device", yaml: "layers: [/dev/zero]\n", wantErr: "layers (project file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.flags
			if tt.yaml != "" {
				f.Config = file(tt.yaml)
			}
			if f.Getenv == nil {
				f.Getenv = env("")
			}
			f.Changed = func(flag string) bool { return slices.Contains(tt.changed, flag) }
			c, err := ResolveBuild(f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
