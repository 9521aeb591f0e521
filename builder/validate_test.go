package builder

import (
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
)

// validConfig is a configuration Validate accepts, defaults applied.
func validConfig(t *testing.T, board string) Config {
	t.Helper()
	b, err := boards.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Board: b, Userland: "busybox", Upper: "data", DataSize: DefaultDataSize, Output: "x.img", Epoch: DefaultEpoch}
}

const (
	sha512  = "$6$niIVd4KbcH7TnNbI$Tx.U.NOX6AEs5YicGz4BeuT55B306gWozFZmm/9RNro8Da/TfrA6VF4VxiiwuBW6Z2Pp5c7wHFTH1pWDquiC50" // openssl passwd -6
	sha512b = "$6$QbOmzeI7Zl1EhM4Z$4ptKAgFSg3PMAhT63ovPNnKwQWQX7BsMK4Z1dTnhSBp.SqnjDTl0IeQsqS6jvDAl4G2cmb2sSaqmiLiBDxXWi/"
	md5     = "$1$LcU977eb$0Svek2d679NqalqZf2wjC." // openssl passwd -1
	sha256h = "$5$rounds=5000$bcvRNTix4iKcOkpH$Lj4PE.E/cfjcFx82koKSlzp5.Xp9brKeNLEXWmJfLnD"
	yescr   = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
	bcrypt  = "$2b$10$" + "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name  string
		board string
		mod   func(c *Config)
		want  string // "" = valid
	}{
		{"defaults", "", func(c *Config) {}, ""},
		// Sizes.
		{"data size not MiB", "", func(c *Config) { c.DataSize = 33554433 }, "data_size 33554433 bytes (32.0 MiB): want a whole number of MiB"},
		{"data size tiny", "", func(c *Config) { c.DataSize = 1 << 20 }, "at least 16 MiB"},
		{"data size huge", "", func(c *Config) { c.DataSize = 1 << 50 }, "at most 16 GiB"},
		{"data size negative", "", func(c *Config) { c.DataSize = -1 << 30 }, "data_size"},
		{"size not MiB", "", func(c *Config) { c.Size = 1<<30 + 1 }, "size 1073741825 bytes"},
		{"size negative", "", func(c *Config) { c.Size = -1 << 20 }, "size"},
		{"size under data size", "", func(c *Config) { c.Size = 64 << 20 }, "too small"},
		{"size fits", "", func(c *Config) { c.Size = 1 << 30 }, ""},
		{"origin named", "", func(c *Config) {
			c.DataSize = 3
			c.Origin = map[string]string{"data_size": "--data-size"}
		}, "--data-size 3 bytes"},
		// Upper.
		{"upper tmpfs sized", "", func(c *Config) { c.Upper = "tmpfs:size=256M" }, ""},
		{"upper percent", "", func(c *Config) { c.Upper = "tmpfs:size=100%" }, ""},
		{"upper injects params", "", func(c *Config) { c.Upper = "tmpfs:size=1M rfs.shell init=/bin/sh" }, "want data, tmpfs or tmpfs:size=N"},
		{"upper mount option", "", func(c *Config) { c.Upper = "tmpfs:size=1M,mode=777" }, "upper"},
		{"upper 0%", "", func(c *Config) { c.Upper = "tmpfs:size=0%" }, "upper"},
		{"upper 101%", "", func(c *Config) { c.Upper = "tmpfs:size=101%" }, "upper"},
		{"upper data partuuid", "", func(c *Config) { c.Upper = "data:PARTUUID=x" }, "upper"},
		{"upper ext4", "", func(c *Config) { c.Upper = "ext4" }, "upper"},
		// Hostname.
		{"hostname fqdn", "", func(c *Config) { c.Hostname = "kiosk-1.lan" }, ""},
		{"hostname 63", "", func(c *Config) { c.Hostname = long }, ""},
		{"hostname space", "", func(c *Config) { c.Hostname = "my host" }, `' ' is not allowed`},
		{"hostname newline", "", func(c *Config) { c.Hostname = "a\n127.0.0.1 evil" }, `'\n' is not allowed`},
		{"hostname 64", "", func(c *Config) { c.Hostname = long + "a" }, "at most 63"},
		{"hostname 254", "", func(c *Config) { c.Hostname = strings.Repeat(long+".", 4)[:254] }, "at most 253"},
		{"hostname hyphen", "", func(c *Config) { c.Hostname = "-x" }, "hyphen"},
		{"hostname dots", "", func(c *Config) { c.Hostname = "a..b" }, "empty label"},
		{"hostname underscore", "", func(c *Config) { c.Hostname = "a_b" }, "'_' is not allowed"},
		{"hostname utf8", "", func(c *Config) { c.Hostname = "café" }, "'é' is not allowed"},
		// Root password hash.
		{"hash sha512", "", func(c *Config) { c.RootHash = sha512 }, ""},
		{"hash sha512 b", "", func(c *Config) { c.RootHash = sha512b }, ""},
		{"hash md5", "", func(c *Config) { c.RootHash = md5 }, ""},
		{"hash sha256 rounds", "", func(c *Config) { c.RootHash = sha256h }, ""},
		{"hash locked", "", func(c *Config) { c.RootHash = "!" + sha512 }, ""},
		{"hash star", "", func(c *Config) { c.RootHash = "*" }, ""},
		{"hash plain", "", func(c *Config) { c.RootHash = "hunter2" }, "not a crypt(3) hash"},
		{"hash newline", "", func(c *Config) { c.RootHash = sha512 + "\nevil::0:0:::::" }, "not a well-formed"},
		{"hash short", "", func(c *Config) { c.RootHash = sha512[:len(sha512)-1] }, "not a well-formed"},
		{"hash colon", "", func(c *Config) { c.RootHash = "$6$salt:x$" + sha512[20:] }, "not a well-formed"},
		{"hash yescrypt busybox", "", func(c *Config) { c.RootHash = yescr }, "busybox 1.34's login cannot verify it"},
		{"hash bcrypt busybox", "", func(c *Config) { c.RootHash = bcrypt }, "cannot verify"},
		{"hash yescrypt u-root", "", func(c *Config) { c.Userland, c.RootHash = "u-root", yescr }, ""},
		{"hash not echoed", "", func(c *Config) { c.RootHash = "s3cret-pass" }, "openssl passwd -6"},
		// Command line.
		{"cmdline quiet", "", func(c *Config) { c.Cmdline = `quiet loglevel=3 rfs.shell=after foo="a b"` }, ""},
		{"cmdline newline", "", func(c *Config) { c.Cmdline = "quiet\nrfs.shell" }, `control character '\n'`},
		{"cmdline NUL", "", func(c *Config) { c.Cmdline = "quiet\x00" }, `control character '\x00'`},
		{"cmdline escape", "", func(c *Config) { c.Cmdline = "\x1b[2J" }, "control character"},
		{"cmdline quote", "", func(c *Config) { c.Cmdline = `foo="bar` }, "unbalanced double quote"},
		{"cmdline rfs.root", "", func(c *Config) { c.Cmdline = "rfs.root=/dev/sda2" }, "rfs.root is set by rfs build"},
		{"cmdline rfs.data", "", func(c *Config) { c.Cmdline = "quiet rfs.data=/dev/sdb1" }, "rfs.data is set by rfs build"},
		{"cmdline rfs.layers", "", func(c *Config) { c.Cmdline = "rfs.layers=" }, "rfs.layers is set"},
		{"cmdline rfs.upper", "", func(c *Config) { c.Cmdline = "rfs.upper=tmpfs" }, "rfs.upper is set"},
		{"cmdline rfs.reset", "", func(c *Config) { c.Cmdline = "rfs.reset=all" }, "every boot"},
		{"cmdline bad init", "", func(c *Config) { c.Cmdline = "rfs.init=sbin/init" }, "not an absolute path"},
		{"cmdline typo", "", func(c *Config) { c.Cmdline = "rfs.shel" }, "unknown parameter rfs.shel"},
		{"cmdline after --", "", func(c *Config) { c.Cmdline = "-- rfs.root=x" }, ""},
		{"cmdline long", "", func(c *Config) { c.Cmdline = strings.Repeat("x", 1900) }, "the limit is 2047"},
		{"cmdline long pi", "rpi4", func(c *Config) { c.Cmdline = strings.Repeat("x", 1500) }, "the limit is 1535"},
		{"cmdline fits", "", func(c *Config) { c.Cmdline = strings.Repeat("x", 1700) }, ""},
		// config.txt.
		{"config_txt ok", "rpi4", func(c *Config) { c.ConfigTxt = []string{"dtoverlay=vc4-kms-v3d", "[pi4]", "# note", ""} }, ""},
		{"config_txt newline", "rpi4", func(c *Config) { c.ConfigTxt = []string{"dtparam=audio=on\nkernel=evil.img"} }, `config_txt entry 1 "dtparam=audio=on\nkernel=evil.img": control character`},
		{"config_txt CR", "rpi4", func(c *Config) { c.ConfigTxt = []string{"a=1", "b=2\r"} }, "entry 2"},
		{"config_txt long", "rpi4", func(c *Config) { c.ConfigTxt = []string{"dtoverlay=" + strings.Repeat("x", 100)} }, "past 98"},
		{"config_txt kernel", "rpi4", func(c *Config) { c.ConfigTxt = []string{"kernel=other.img"} }, "kernel is set by rfs"},
		{"config_txt initramfs", "rpi4", func(c *Config) { c.ConfigTxt = []string{"initramfs x.img followkernel"} }, "initramfs is set by rfs"},
		// Other values that end in files.
		{"epoch negative", "", func(c *Config) { c.Epoch = -1 }, "epoch -1"},
		{"epoch beyond 2106", "", func(c *Config) { c.Epoch = 1 << 32 }, "32 bits"},
		{"volume newline", "", func(c *Config) { c.Volumes = []Volume{{Name: "a", Path: "/x\ny"}} }, "volume"},
		{"files dest newline", "", func(c *Config) { c.Files = []Files{{Src: ".", Dest: "/opt/a\nb"}} }, "control characters"},
		{"files dest relative", "", func(c *Config) { c.Files = []Files{{Src: ".", Dest: "opt"}} }, "absolute"},
		{"userland", "", func(c *Config) { c.Userland = "toybox" }, `userland "toybox"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			board := tt.board
			if board == "" {
				board = "qemu-arm64"
			}
			c := validConfig(t, board)
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			if err != nil && c.RootHash != "" && c.RootHash != "*" && strings.Contains(err.Error(), c.RootHash) {
				t.Errorf("the message shows the password field: %v", err)
			}
		})
	}
}

// The command line measured by Validate is the one Build writes, but for
// the partition ids, which have the same length.
func TestCmdlineMeasure(t *testing.T) {
	for _, board := range []string{"qemu-arm64", "rpi", "pc"} {
		c := validConfig(t, board)
		c.Layers = []string{"a", "b"}
		c.Cmdline = "quiet"
		got := c.kernelCmdline(placeholderIDs(&c))
		real := c.kernelCmdline(partIDs{root: DeriveGUID("x", "root"), data: DeriveGUID("x", "data"), boot: DeriveGUID("x", "boot"), layers: []string{DeriveGUID("x", "l1"), DeriveGUID("x", "l2")}})
		if c.Board.Table == "mbr" {
			real = c.kernelCmdline(partIDs{root: "0a0b0c0d-02", data: "0a0b0c0d-04", boot: "0a0b0c0d-01", layers: []string{"0a0b0c0d-05", "0a0b0c0d-06"}})
		}
		if len(got) != len(real) || !strings.HasSuffix(got, " rfs.upper=data quiet") {
			t.Errorf("%s: measured %q (%d), built %q (%d)", board, got, len(got), real, len(real))
		}
	}
}
