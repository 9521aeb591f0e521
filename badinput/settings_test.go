package badinput

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/squashfs"
)

// Settings are validated, never passed through: every value that ends in
// a kernel command line, a mount option, a QEMU argument or a file of the
// image is checked before any work, and the message names the flag or the
// rfs.yaml file, line and key, and the problem.

// project writes rfs.yaml (the given lines) into the case's directory.
func project(lines ...string) func(t tester, dir string) {
	return func(t tester, dir string) {
		writeFile(t, dir, "rfs.yaml", strings.Join(lines, "\n")+"\n")
	}
}

// yamlArgs runs rfs build on the case's rfs.yaml.
var yamlArgs = []string{"build", "-c", "{dir}/rfs.yaml"}

const sizeForms = "whole number of bytes, optionally followed by K, M, G or T"

func TestSettingsSizes(t *testing.T) {
	runCases(t, []badCase{
		{name: "data-size with garbage", args: []string{"build", "--data-size", "33554432garbage"}, want: []string{`--data-size "33554432garbage"`, `unknown suffix "garbage"`, sizeForms}},
		{name: "data-size 1e30", args: []string{"build", "--data-size", "1e30"}, want: []string{`--data-size "1e30": not a size`, sizeForms}},
		{name: "data-size NaN", args: []string{"build", "--data-size", "NaN"}, want: []string{`--data-size "NaN": not a size`}},
		{name: "data-size Inf", args: []string{"build", "--data-size", "Inf"}, want: []string{`--data-size "Inf": not a size`}},
		{name: "size negative", args: []string{"build", "--size", "-1G"}, want: []string{`--size "-1G": not a size`}},
		{name: "size fraction", args: []string{"build", "--size", "1.5G"}, want: []string{`--size "1.5G": not a size`}},
		{name: "size hex", args: []string{"build", "--size", "0x40000000"}, want: []string{`--size "0x40000000"`}},
		{name: "data-size MB is ambiguous", args: []string{"build", "--data-size", "64MB"}, want: []string{`--data-size "64MB"`, "ambiguous", "write M or MiB"}},
		{name: "data-size overflows", args: []string{"build", "--data-size", "99999999999999999999"}, want: []string{"--data-size", "too large"}},
		{name: "data-size overflows with suffix", args: []string{"build", "--data-size", "9000000T"}, want: []string{"--data-size", "too large"}},
		{name: "data-size below ext4's minimum", args: []string{"build", "--data-size", "8M"}, want: []string{"--data-size 8388608 bytes", "at least 16 MiB"}},
		{name: "data-size not whole MiB", args: []string{"build", "--data-size", "33554433"}, want: []string{"--data-size 33554433 bytes", "whole number of MiB"}},
		{name: "size smaller than the data partition", args: []string{"build", "--size", "32M", "--data-size", "64M"}, want: []string{"--size 33554432 bytes", "too small", "--data-size"}},
		{name: "size beyond 2 TiB", args: []string{"build", "--size", "32T"}, want: []string{"--size", "at most 2 TiB"}},
		{name: "rfs.yaml data_size 1e30", args: yamlArgs, setup: project("board: qemu-arm64", "data_size: 1e30"), want: []string{`{dir}/rfs.yaml:2: data_size "1e30": not a size`, sizeForms}},
		{name: "rfs.yaml size with garbage", args: yamlArgs, setup: project("size: 1G of space"), want: []string{`{dir}/rfs.yaml:1: size "1G of space"`, "unknown suffix"}},
		{name: "rfs.yaml data_size too small", args: yamlArgs, setup: project("# small", "data_size: 1M"), want: []string{"{dir}/rfs.yaml:2: data_size 1048576 bytes", "at least 16 MiB"}},
		{name: "flag wins over rfs.yaml and is named", args: []string{"build", "-c", "{dir}/rfs.yaml", "--data-size", "NaN"}, setup: project("data_size: 64M"), want: []string{`--data-size "NaN"`}},
		{name: "squashfs block size", args: []string{"squashfs", "{dir}/.tmp", "-o", "{dir}/x.sqfs", "-b", "128Kx"}, want: []string{`--block-size "128Kx"`, "unknown suffix"}},
		{name: "squashfs block size range", args: []string{"squashfs", "{dir}/.tmp", "-o", "{dir}/x.sqfs", "-b", "2M"}, want: []string{`--block-size "2M"`, "power of two from 4K to 1M"}},
		{name: "squashfs xz dict size", args: []string{"squashfs", "{dir}/.tmp", "-o", "{dir}/x.sqfs", "--comp", "xz", "--xz-dict-size", "NaN"}, want: []string{`--xz-dict-size "NaN"`}},
	})
}

func TestSettingsHostname(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	runCases(t, []badCase{
		{name: "space", args: []string{"build", "--hostname", "my host"}, want: []string{`--hostname "my host"`, `' ' is not allowed`, "RFC 1123"}},
		{name: "newline corrupts /etc/hosts", args: []string{"build", "--hostname", "kiosk\n10.0.0.1 bank.example"}, want: []string{"--hostname", `'\n' is not allowed`}},
		{name: "leading hyphen", args: []string{"build", "--hostname", "-kiosk"}, want: []string{`label "-kiosk" starts or ends with a hyphen`}},
		{name: "trailing hyphen", args: []string{"build", "--hostname", "kiosk-.lan"}, want: []string{"hyphen"}},
		{name: "label of 64", args: []string{"build", "--hostname", label63 + "a"}, want: []string{"64 characters: at most 63"}},
		{name: "254 characters", args: []string{"build", "--hostname", strings.Repeat(label63+".", 4)[:254]}, want: []string{"254 characters: at most 253"}},
		{name: "underscore", args: []string{"build", "--hostname", "my_host"}, want: []string{`'_' is not allowed`}},
		{name: "non-ASCII", args: []string{"build", "--hostname", "café"}, want: []string{`'é' is not allowed`}},
		{name: "double dot", args: []string{"build", "--hostname", "a..b"}, want: []string{"empty label"}},
		{name: "trailing dot", args: []string{"build", "--hostname", "kiosk."}, want: []string{"empty label"}},
		{name: "rfs.yaml newline", args: yamlArgs, setup: project("board: qemu-arm64", `hostname: "a\nb"`), want: []string{`{dir}/rfs.yaml:2: hostname "a\nb"`, "not allowed"}},
		{name: "rfs.yaml shell metacharacters", args: yamlArgs, setup: project(`hostname: "$(reboot)"`), want: []string{"{dir}/rfs.yaml:1: hostname", `'$' is not allowed`}},
	})
}

func TestSettingsUpper(t *testing.T) {
	const forms = "want data, tmpfs or tmpfs:size=N"
	runCases(t, []badCase{
		{name: "injects kernel parameters", args: []string{"build", "--upper", "tmpfs:size=1M rfs.shell init=/bin/sh"}, want: []string{`--upper "tmpfs:size=1M rfs.shell init=/bin/sh"`, forms}},
		{name: "injects mount options", args: []string{"build", "--upper", "tmpfs:size=1M,mode=777"}, want: []string{"--upper", forms}},
		{name: "other tmpfs option", args: []string{"build", "--upper", "tmpfs:nr_inodes=1"}, want: []string{"--upper", forms}},
		{name: "zero percent", args: []string{"build", "--upper", "tmpfs:size=0%"}, want: []string{"--upper", "percentage of RAM from 1% to 100%"}},
		{name: "over 100 percent", args: []string{"build", "--upper", "tmpfs:size=150%"}, want: []string{"--upper", forms}},
		{name: "fraction", args: []string{"build", "--upper", "tmpfs:size=1.5G"}, want: []string{"--upper", forms}},
		{name: "overflow", args: []string{"build", "--upper", "tmpfs:size=99999999999999999999G"}, want: []string{"--upper", forms}},
		{name: "empty after colon", args: []string{"build", "--upper", "tmpfs:"}, want: []string{"--upper", forms}},
		{name: "data with a partition", args: []string{"build", "--upper", "data:PARTUUID=12345678-01"}, want: []string{"--upper", forms}},
		{name: "unknown mode", args: []string{"build", "--upper", "ext4"}, want: []string{`--upper "ext4"`, forms}},
		{name: "rfs.yaml injection", args: yamlArgs, setup: project("board: qemu-arm64", "upper: tmpfs:size=1M rfs.shell"), want: []string{`{dir}/rfs.yaml:2: upper "tmpfs:size=1M rfs.shell"`, forms}},
		{name: "rfs.yaml newline", args: yamlArgs, setup: project(`upper: "data\nrfs.shell"`), want: []string{"{dir}/rfs.yaml:1: upper", forms}},
	})
}

func TestSettingsPasswordHash(t *testing.T) {
	const sha512 = "$6$niIVd4KbcH7TnNbI$Tx.U.NOX6AEs5YicGz4BeuT55B306gWozFZmm/9RNro8Da/TfrA6VF4VxiiwuBW6Z2Pp5c7wHFTH1pWDquiC50"
	const yescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
	// The value may be a password typed in plain: the message must not
	// show it.
	notEchoed := func(secret string) func(t tester, dir, out string) {
		return func(t tester, dir, out string) {
			if strings.Contains(out, secret) {
				t.Errorf("the message shows the password field %q", secret)
			}
		}
	}
	hash := func(name, value string, want ...string) badCase {
		return badCase{name: name, args: yamlArgs, setup: project("board: qemu-arm64", "login: true", "root_password_hash: '"+value+"'"),
			want: append([]string{"{dir}/rfs.yaml:3: root_password_hash"}, want...), check: notEchoed(value)}
	}
	runCases(t, []badCase{
		hash("plain password", "hunter2", "not a crypt(3) hash", "lock root out", "openssl passwd -6"),
		hash("plain password with dollar", "pa$$word", "not a crypt(3) hash"),
		hash("truncated sha512", sha512[:len(sha512)-3], "not a well-formed crypt(3) hash", "mkpasswd"),
		hash("salt with a colon", "$6$ab:cd$"+sha512[20:], "not a well-formed"),
		hash("unknown scheme", "$9$abc$def", "unknown scheme"),
		hash("DES crypt", "abJnggxhB/yWI", "not a crypt(3) hash"),
		hash("yescrypt busybox cannot verify", yescrypt, "yescrypt", "busybox 1.34's login cannot verify it"),
		{name: "newline injects a shadow line", args: yamlArgs, setup: project(`root_password_hash: "` + sha512 + `\nevil::0:0:99999:7:::"`),
			want: []string{"{dir}/rfs.yaml:1: root_password_hash", "not a well-formed"}, check: notEchoed("evil::0")},
	})
}

func TestSettingsCmdline(t *testing.T) {
	runCases(t, []badCase{
		{name: "newline", args: []string{"build", "--cmdline", "quiet\nrfs.shell"}, want: []string{"--cmdline", `control character '\n'`}},
		{name: "carriage return", args: []string{"build", "--cmdline", "quiet\r"}, want: []string{"--cmdline", `control character '\r'`}},
		{name: "terminal escape", args: []string{"build", "--cmdline", "\x1b[2Jquiet"}, want: []string{"--cmdline", "control character"}},
		{name: "unbalanced quote", args: []string{"build", "--cmdline", `dyndbg="file x.c +p`}, want: []string{"--cmdline", "unbalanced double quote"}},
		{name: "rfs.root", args: []string{"build", "--cmdline", "rfs.root=/dev/sda2"}, want: []string{"--cmdline", "rfs.root is set by rfs build"}},
		{name: "rfs.data", args: []string{"build", "--cmdline", "quiet rfs.data=PARTUUID=12345678-03"}, want: []string{"rfs.data is set by rfs build"}},
		{name: "rfs.boot", args: []string{"build", "--cmdline", "rfs.boot=/dev/vda1"}, want: []string{"rfs.boot is set by rfs build"}},
		{name: "rfs.layers", args: []string{"build", "--cmdline", "rfs.layers="}, want: []string{"rfs.layers is set by rfs build"}},
		{name: "rfs.upper", args: []string{"build", "--cmdline", "rfs.upper=tmpfs"}, want: []string{"rfs.upper is set by rfs build", "--upper"}},
		{name: "rfs.reset every boot", args: []string{"build", "--cmdline", "rfs.reset"}, want: []string{"every boot", "rfs reset IMAGE"}},
		{name: "relative rfs.init", args: []string{"build", "--cmdline", "rfs.init=sbin/init"}, want: []string{"--cmdline", "not an absolute path"}},
		{name: "misspelt rfs parameter", args: []string{"build", "--cmdline", "rfs.shel"}, want: []string{"--cmdline", "unknown parameter rfs.shel"}},
		{name: "too long", args: []string{"build", "--cmdline", strings.Repeat("x", 1950)}, want: []string{"--cmdline", "would be", "the limit is 2047"}},
		{name: "too long for a Pi", args: []string{"build", "--board", "rpi4", "--cmdline", strings.Repeat("x", 1450)}, want: []string{"--cmdline", "the limit is 1535"}},
		{name: "rfs.yaml NUL", args: yamlArgs, setup: project("board: qemu-arm64", `cmdline: "quiet\0x"`), want: []string{"{dir}/rfs.yaml:2: cmdline", `control character '\x00'`}},
		{name: "rfs.yaml block scalar", args: yamlArgs, setup: project("cmdline: |", "  quiet", "  rfs.shell"), want: []string{"{dir}/rfs.yaml:1: cmdline", `control character '\n'`}},
		{name: "rfs.yaml rfs.root", args: yamlArgs, setup: project("cmdline: quiet rfs.root=/dev/mmcblk0p2"), want: []string{"{dir}/rfs.yaml:1: cmdline", "rfs.root is set by rfs build"}},
	})
}

func TestSettingsRunFlags(t *testing.T) {
	runCases(t, []badCase{
		{name: "memory bare number is bytes", args: []string{"run", "{image}", "--memory", "512"}, want: []string{`--memory "512"`, "a bare number is bytes"}},
		{name: "memory fraction", args: []string{"run", "{image}", "--memory", "1.5G"}, want: []string{`--memory "1.5G": not a size`}},
		{name: "memory injects QEMU options", args: []string{"run", "{image}", "--memory", "1G,slots=4,maxmem=64G"}, want: []string{`--memory "1G,slots=4,maxmem=64G"`, "not a size"}},
		{name: "memory huge", args: []string{"run", "{image}", "--memory", "64T"}, want: []string{`--memory "64T"`, "from 64M to 1T"}},
		{name: "memory negative", args: []string{"run", "{image}", "--memory", "-1G"}, want: []string{`--memory "-1G"`}},
		{name: "timeout zero", args: []string{"run", "{image}", "--expect", "x", "--timeout", "0s"}, want: []string{"--timeout 0s", "positive duration"}},
		{name: "timeout negative", args: []string{"run", "{image}", "--expect", "x", "--timeout", "-5s"}, want: []string{"--timeout -5s", "positive duration"}},
		{name: "append newline", args: []string{"run", "{image}", "--append", "rfs.shell\ninit=/bin/sh"}, want: []string{"--append", `control character '\n'`}},
		{name: "append escape", args: []string{"run", "{image}", "--append", "\x1b]0;owned\x07"}, want: []string{"--append", "control character"}},
		{name: "append unbalanced quote", args: []string{"run", "{image}", "--append", `foo="bar`}, want: []string{"--append", "unbalanced double quote"}},
		{name: "append too long", args: []string{"run", "{image}", "--append", strings.Repeat("x", 2000)}, want: []string{"--append", "the limit is 2047"}},
	})
}

func TestSettingsFileValues(t *testing.T) {
	runCases(t, []badCase{
		{name: "config_txt newline", args: yamlArgs, setup: project("board: rpi4", "config_txt:", `  - "dtparam=audio=on\nkernel=evil.img"`),
			want: []string{"{dir}/rfs.yaml:2: config_txt entry 1", `control character '\n'`, "one entry is one line"}},
		{name: "config_txt CR", args: yamlArgs, setup: project("board: rpi", "config_txt:", "  - dtoverlay=vc4-kms-v3d", `  - "dtparam=i2c_arm=on\r"`),
			want: []string{"config_txt entry 2", `control character '\r'`}},
		{name: "config_txt too long", args: yamlArgs, setup: project("board: rpi4", "config_txt:", "  - dtoverlay="+strings.Repeat("x", 100)),
			want: []string{"config_txt entry 1", "110 characters", "past 98"}},
		{name: "config_txt kernel", args: yamlArgs, setup: project("board: rpi4", "config_txt:", "  - kernel=other.img"),
			want: []string{"config_txt entry 1", "kernel is set by rfs"}},
		{name: "config_txt initramfs", args: yamlArgs, setup: project("board: rpi4", "config_txt:", "  - initramfs other.img followkernel"),
			want: []string{"initramfs is set by rfs"}},
		{name: "volume newline", args: []string{"build", "--volume", "/var/lib/app\nevil /etc"}, want: []string{"volume", "spaces and # are not allowed"}},
		{name: "files destination newline", args: []string{"build", "--files", "{dir}:/opt/a\nb"}, want: []string{"--files", "control characters"}},
		{name: "epoch negative", args: []string{"build", "--epoch", "-1"}, want: []string{"--epoch -1", "from 0 to 4294967295"}},
		{name: "rfs.yaml epoch beyond squashfs", args: yamlArgs, setup: project("epoch: 4294967296"), want: []string{"{dir}/rfs.yaml:1: epoch 4294967296", "32 bits"}},
		{name: "SOURCE_DATE_EPOCH garbage", args: []string{"build"}, env: []string{"SOURCE_DATE_EPOCH=yesterday"}, want: []string{`SOURCE_DATE_EPOCH "yesterday"`, "seconds since 1970", "unset it"}},
		{name: "SOURCE_DATE_EPOCH float", args: []string{"build"}, env: []string{"SOURCE_DATE_EPOCH=1.7e9"}, want: []string{`SOURCE_DATE_EPOCH "1.7e9"`}},
		{name: "SOURCE_DATE_EPOCH squashfs", args: []string{"squashfs", "{dir}/.tmp", "-o", "{dir}/x.sqfs"}, env: []string{"SOURCE_DATE_EPOCH=-1"}, want: []string{`SOURCE_DATE_EPOCH "-1"`}},
		{name: "app path is a go flag", args: yamlArgs, setup: project("apps:", "  - path: -modfile=/tmp/x@v1", "    name: x"), want: []string{"{dir}/rfs.yaml:1: apps", "not a package path"}},
		{name: "u-root command climbs out", args: yamlArgs, setup: project("userland: u-root", "uroot_commands: [github.com/u-root/u-root/cmds/../../../evil/x]"), want: []string{"{dir}/rfs.yaml:2: uroot_commands"}},
	})
}

// TestSettingsFilesMode: a --files directory made by mktemp -d (0700)
// leaves the image's / at 0755; a tree that makes /etc 0700 builds, with a
// warning naming /etc and the source. (A build that succeeds does not fit
// runCases, which wants a failure.)
func TestSettingsFilesMode(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	spoiler := filepath.Join(dir, "spoiler")
	os.MkdirAll(filepath.Join(spoiler, "etc"), 0o700)
	os.Chmod(filepath.Join(spoiler, "etc"), 0o700)
	os.Mkdir(private, 0o700)
	writeFile(t, private, "hello", "hi\n")
	img := filepath.Join(dir, "out.img")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rfsBin, "build", "-q", "--files", private, "--files", spoiler, "-o", img)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if want := "--files " + spoiler + " makes the image's /etc mode 0700"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(string(out), "image's / ") {
		t.Errorf("a warning about / although / kept its mode:\n%s", out)
	}
	disk, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	rp, err := disk.Partition(image.RootPartition)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := squashfs.Open(disk.Section(rp))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := sq.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	if tree.Root.Perm != 0o755 {
		t.Errorf("the image's / is %04o, want 0755", tree.Root.Perm)
	}
	if n := tree.Lookup("/hello"); n == nil {
		t.Error("the --files content did not merge in")
	}
}

// patchData writes b into the data partition's ext4 superblock of
// {dir}/dev.img at off (bytes from the superblock's start).
func patchData(off int64, b []byte) func(t tester, dir string) {
	return func(t tester, dir string) {
		img := filepath.Join(dir, "dev.img")
		disk, err := image.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		p, err := disk.Partition(image.DataPartition)
		disk.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, p.Start+1024+off); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSettingsMessages: messages that used to blame the wrong thing.
func TestSettingsMessages(t *testing.T) {
	damaged := []string{"{dir}/dev.img", "the data partition's superblock is damaged", "partition 3", "nothing was changed", "e2fsck"}
	runCases(t, []badCase{
		{name: "reset of a zeroed ext4 magic", args: []string{"reset", "{image}"}, setup: patchData(0x38, []byte{0, 0}), want: append(damaged, "no ext4 superblock")},
		{name: "reset of a whole zeroed superblock", args: []string{"reset", "--all", "{image}"}, setup: patchData(0, make([]byte, 1024)), want: damaged},
		{name: "reset of a relabelled data partition", args: []string{"reset", "{image}"}, setup: patchData(0x78, []byte("other\x00")),
			want: []string{"{dir}/dev.img", "partition 3", `labelled "other", not "rfs-data"`, "nothing was changed", "e2label"}},
		{name: "reset --now of a damaged superblock", args: []string{"reset", "--now", "{image}"}, setup: patchData(0x38, []byte{0, 0}), want: damaged, root: true},
	})
}
