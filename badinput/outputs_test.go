package badinput

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Outputs that would destroy something: a device node, fifo, socket or
// directory at the output path (also behind a symlink), an output that is
// an input, two outputs that are one file, an output inside an input
// directory. Every case must be refused before anything is written: the
// runner checks that every input, node and link in the scratch dir is
// unchanged and that no temp file is left.

const notAFile = "not a file"

// TestOutputNotAFile: the output exists and is not a regular file.
func TestOutputNotAFile(t *testing.T) {
	src := func(t tester, dir string) { writeFile(t, dir, "src/a", "a\n") }
	withSrc := func(f func(t tester, dir string)) func(t tester, dir string) {
		return func(t tester, dir string) { src(t, dir); f(t, dir) }
	}
	runCases(t, []badCase{
		{name: "build -o /dev/null", args: []string{"build", "-o", "/dev/null"}, root: true,
			want: []string{"output -o /dev/null exists and is a character device", "rfs flash"}, check: devNullIntact},
		{name: "build -o /dev/zero", args: []string{"build", "-o", "/dev/zero"}, root: true,
			want: []string{"/dev/zero exists and is a character device"}, check: devNullIntact},
		{name: "build -o fifo", args: []string{"build", "-o", "fifo"}, setup: mkfifo("fifo"),
			want: []string{"output -o fifo exists and is a named pipe, " + notAFile}},
		{name: "build -o directory", args: []string{"build", "-o", "outdir"}, setup: mkdir("outdir"),
			want: []string{"outdir exists and is a directory", "outdir/disk.img"}},
		{name: "build -o socket", args: []string{"build", "-o", "sock"}, setup: mksocket("sock"),
			want: []string{"sock exists and is a socket"}},
		{name: "build -o symlink to /dev/null", args: []string{"build", "-o", "null.img"}, setup: symlink("/dev/null", "null.img"),
			want: []string{"null.img (through the symlink to /dev/null) exists and is a character device"}, check: devNullIntact},
		{name: "build -o block device node", args: []string{"build", "-o", "sdx"}, setup: mkblock("sdx"), root: true,
			want: []string{"sdx exists and is a block device", "rfs flash"}},
		{name: "build -o symlink to a block device node", args: []string{"build", "-o", "disk.img"}, root: true,
			setup: func(t tester, dir string) { mkblock("sdx")(t, dir); symlink("sdx", "disk.img")(t, dir) },
			want:  []string{"through the symlink to", "block device"}},
		{name: "build output: in rfs.yaml names a fifo", args: []string{"build"},
			setup: func(t tester, dir string) {
				writeFile(t, dir, "rfs.yaml", "output: pipe\n")
				mkfifo("pipe")(t, dir)
			},
			want: []string{"pipe exists and is a named pipe"}},
		{name: "squashfs -o /dev/null", args: []string{"squashfs", "src", "-o", "/dev/null"}, setup: src, root: true,
			want: []string{"/dev/null exists and is a character device"}, check: devNullIntact},
		{name: "squashfs OUT is a named pipe", args: []string{"squashfs", "src", "fifo"}, setup: withSrc(mkfifo("fifo")),
			want: []string{"output OUT fifo exists and is a named pipe"}},
		{name: "squashfs -o directory", args: []string{"squashfs", "src", "-o", "outdir"}, setup: withSrc(mkdir("outdir")),
			want: []string{"outdir exists and is a directory"}},
		{name: "squashfs -o symlink to /dev/null", args: []string{"squashfs", "src", "-o", "l.sqfs"}, setup: withSrc(symlink("/dev/null", "l.sqfs")),
			want: []string{"through the symlink to /dev/null", "character device"}, check: devNullIntact},
		{name: "commit -o /dev/null", args: []string{"commit", "{image}", "-o", "/dev/null"}, root: true,
			want: []string{"/dev/null exists and is a character device"}, check: devNullIntact},
		{name: "commit --oci fifo", args: []string{"commit", "{image}", "--oci", "fifo"}, setup: mkfifo("fifo"),
			want: []string{"output --oci fifo exists and is a named pipe"}},
		{name: "commit -o directory", args: []string{"commit", "{image}", "-o", "outdir"}, setup: mkdir("outdir"),
			want: []string{"output -o outdir exists and is a directory"}},
		{name: "commit -o symlink to /dev/zero", args: []string{"commit", "{image}", "-o", "z.sqfs"}, setup: symlink("/dev/zero", "z.sqfs"),
			want: []string{"through the symlink to /dev/zero", "character device"}, check: devNullIntact},
		{name: "init --force /dev/null", args: []string{"init", "--force", "/dev/null"}, root: true,
			want: []string{"/dev/null exists and is a character device"}, check: devNullIntact},
		{name: "init --force fifo", args: []string{"init", "--force", "fifo"}, setup: mkfifo("fifo"),
			want: []string{"fifo exists and is a named pipe"}},
	})
}

// TestOutputIsInput: an output that is one of the command's inputs, also
// through a symlink, a hard link or a roundabout path.
func TestOutputIsInput(t *testing.T) {
	yaml := func(content string) func(t tester, dir string) {
		return func(t tester, dir string) { writeFile(t, dir, "rfs.yaml", content) }
	}
	// A real layer: a fake one would be refused as "not a squashfs" by
	// luck, before the output is ever opened.
	layer := func(t tester, dir string) {
		writeFile(t, dir, "lsrc/etc/motd", "layer\n")
		if out, err := exec.Command(rfsBin, "squashfs", filepath.Join(dir, "lsrc"), filepath.Join(dir, "l.sqfs"), "--quiet").CombinedOutput(); err != nil {
			t.Fatalf("make a layer: %v\n%s", err, out)
		}
	}
	kernel := func(t tester, dir string) { writeFile(t, dir, "Image", "a kernel\n") }
	both := func(fs ...func(t tester, dir string)) func(t tester, dir string) {
		return func(t tester, dir string) {
			for _, f := range fs {
				f(t, dir)
			}
		}
	}
	runCases(t, []badCase{
		{name: "build -c rfs.yaml -o rfs.yaml", args: []string{"build", "-c", "rfs.yaml", "-o", "rfs.yaml"}, setup: yaml("board: qemu-arm64\n"),
			want: []string{"output -o rfs.yaml is the same file as the input project file rfs.yaml"}},
		{name: "build -o the default rfs.yaml", args: []string{"build", "-o", "./rfs.yaml"}, setup: yaml("hostname: x\n"),
			want: []string{"same file as the input project file rfs.yaml"}},
		{name: "output: in rfs.yaml names rfs.yaml", args: []string{"build"}, setup: yaml("output: rfs.yaml\n"),
			want: []string{"same file as the input project file"}},
		{name: "build -c sub/p.yaml, output relative to it", args: []string{"build", "-c", "sub/p.yaml"},
			setup: func(t tester, dir string) { writeFile(t, dir, "sub/p.yaml", "output: ../sub/p.yaml\n") },
			want:  []string{"same file as the input project file sub/p.yaml"}},
		{name: "build --layer L -o L", args: []string{"build", "--layer", "l.sqfs", "-o", "l.sqfs"}, setup: layer,
			want: []string{"output -o l.sqfs is the same file as the input --layer l.sqfs"}},
		{name: "build --layer L -o hard link to L", args: []string{"build", "--layer", "l.sqfs", "-o", "h.sqfs"}, setup: both(layer, hardlink("l.sqfs", "h.sqfs")),
			want: []string{"output -o h.sqfs is the same file as the input --layer l.sqfs"}},
		{name: "build --layer L -o symlink to L", args: []string{"build", "--layer", "l.sqfs", "-o", "s.sqfs"}, setup: both(layer, symlink("l.sqfs", "s.sqfs")),
			want: []string{"output -o s.sqfs is the same file as the input --layer l.sqfs"}},
		{name: "build second --layer as -o", args: []string{"build", "--layer", "l.sqfs", "--layer", "m.sqfs", "-o", "sub/../m.sqfs"},
			setup: both(layer, func(t tester, dir string) { writeFile(t, dir, "m.sqfs", "m\n"); mkdir("sub")(t, dir) }),
			want:  []string{"same file as the input --layer m.sqfs"}},
		{name: "layers: in rfs.yaml, -o the layer", args: []string{"build", "-o", "l.sqfs"}, setup: both(layer, yaml("layers: [l.sqfs]\n")),
			want: []string{"same file as the input --layer"}},
		{name: "build --kernel K -o K", args: []string{"build", "--kernel", "Image", "-o", "Image"}, setup: kernel,
			want: []string{"output -o Image is the same file as the input --kernel Image"}},
		{name: "build --kernel DIR -o DIR/vmlinuz", args: []string{"build", "--kernel", "kdir", "-o", "kdir/vmlinuz"},
			setup: func(t tester, dir string) { writeFile(t, dir, "kdir/vmlinuz", "a kernel\n") },
			want:  []string{"same file as the input --kernel kdir/vmlinuz"}},
		{name: "kernel: in rfs.yaml, -o hard link to it", args: []string{"build", "-o", "k.img"}, setup: both(kernel, yaml("kernel: Image\n"), hardlink("Image", "k.img")),
			want: []string{"same file as the input --kernel"}},
		{name: "build --efi-stub S -o S", args: []string{"build", "--board", "pc", "--efi-stub", "stub.efi", "-o", "stub.efi"},
			setup: func(t tester, dir string) { writeFile(t, dir, "stub.efi", "MZ stub\n") },
			want:  []string{"same file as the input --efi-stub stub.efi"}},
		{name: "build -o an app's source file", args: []string{"build", "-o", "app/main.go"},
			setup: func(t tester, dir string) {
				writeFile(t, dir, "rfs.yaml", "apps:\n  - path: ./app\n")
				writeFile(t, dir, "app/main.go", "package main\n\nfunc main() {}\n")
			},
			want: []string{"output -o app/main.go is the same file as the input app source app/main.go"}},
		{name: "commit IMG -o IMG", args: []string{"commit", "{image}", "-o", "{image}"},
			want: []string{"output -o {image} is the same file as the input TARGET {image}"}},
		{name: "commit IMG --oci IMG", args: []string{"commit", "{image}", "--oci", "{image}"},
			want: []string{"output --oci {image} is the same file as the input TARGET"}},
		{name: "commit IMG -o hard link to IMG", args: []string{"commit", "{image}", "-o", "h.img"},
			setup: hardlink("dev.img", "h.img"),
			want:  []string{"output -o h.img is the same file as the input TARGET"}},
		{name: "commit IMG -o symlink to IMG", args: []string{"commit", "{image}", "-o", "s.img"}, setup: symlink("dev.img", "s.img"),
			want: []string{"output -o s.img is the same file as the input TARGET"}},
		{name: "commit LOWER UPPER -o LOWER", args: []string{"commit", "lower.sqfs", "upper", "-o", "lower.sqfs"},
			setup: func(t tester, dir string) {
				writeFile(t, dir, "lower.sqfs", "lower\n")
				writeFile(t, dir, "upper/a", "a\n")
			},
			want: []string{"output -o lower.sqfs is the same file as the input LOWER lower.sqfs"}},
	})
}

// TestOutputsCollide: two outputs of one command that are one file.
func TestOutputsCollide(t *testing.T) {
	runCases(t, []badCase{
		{name: "commit -o X --oci X", args: []string{"commit", "{image}", "-o", "x", "--oci", "x"},
			want: []string{"outputs -o x and --oci x are the same file"}},
		{name: "commit -o X --oci ./sub/../X", args: []string{"commit", "{image}", "-o", "x", "--oci", "./sub/../x"}, setup: mkdir("sub"),
			want: []string{"outputs -o x and --oci ./sub/../x are the same file"}},
		{name: "commit -o X --oci through a symlinked dir", args: []string{"commit", "{image}", "-o", "x", "--oci", "here/x"}, setup: symlink(".", "here"),
			want: []string{"are the same file"}},
		{name: "commit -o existing X --oci its hard link", args: []string{"commit", "{image}", "-o", "x", "--oci", "y"},
			setup: func(t tester, dir string) { writeFile(t, dir, "x", "old\n"); hardlink("x", "y")(t, dir) },
			want:  []string{"outputs -o x and --oci y are the same file"}},
		{name: "commit -o X --oci absolute X", args: []string{"commit", "{image}", "-o", "x.sqfs", "--oci", "{dir}/x.sqfs"},
			want: []string{"are the same file"}},
	})
}

// TestOutputInsideInputDir: an output inside a directory the command reads
// as a whole would be swallowed by the next run.
func TestOutputInsideInputDir(t *testing.T) {
	files := func(t tester, dir string) { writeFile(t, dir, "files/etc/motd", "hi\n") }
	src := func(t tester, dir string) { writeFile(t, dir, "src/a", "a\n") }
	runCases(t, []badCase{
		{name: "build --files F -o F/x.img", args: []string{"build", "--files", "files", "-o", "files/x.img"}, setup: files,
			want: []string{"output -o files/x.img is inside the input directory --files files"}},
		{name: "build --files F:/opt -o F/sub/new/x.img", args: []string{"build", "--files", "files:/opt", "-o", "files/sub/new/x.img"}, setup: files,
			want: []string{"inside the input directory --files files"}},
		{name: "build --files . (default output out/)", args: []string{"build", "--files", "."}, setup: files,
			want: []string{"output -o out/qemu-arm64.img is inside the input directory --files ."}},
		{name: "files: in rfs.yaml, -o inside", args: []string{"build", "-o", "files/etc/x.img"},
			setup: func(t tester, dir string) { files(t, dir); writeFile(t, dir, "rfs.yaml", "files: [files]\n") },
			want:  []string{"inside the input directory --files"}},
		{name: "build --files F -o through a symlink into F", args: []string{"build", "--files", "files", "-o", "link/x.img"},
			setup: func(t tester, dir string) { files(t, dir); symlink("files/etc", "link")(t, dir) },
			want:  []string{"output -o link/x.img is inside the input directory --files files"}},
		{name: "squashfs SRC SRC/x.sqfs", args: []string{"squashfs", "src", "src/x.sqfs"}, setup: src,
			want: []string{"output OUT src/x.sqfs is inside the input directory DIR src"}},
		{name: "squashfs SRC -o SRC/deep/x.sqfs", args: []string{"squashfs", "src", "-o", "src/deep/x.sqfs"}, setup: src,
			want: []string{"output -o src/deep/x.sqfs is inside the input directory DIR src"}},
		{name: "squashfs . -o x.sqfs", args: []string{"squashfs", ".", "-o", "x.sqfs"}, setup: src,
			want: []string{"inside the input directory DIR ."}},
		{name: "squashfs via a symlink to SRC", args: []string{"squashfs", "src", "-o", "s/x.sqfs"}, setup: func(t tester, dir string) { src(t, dir); symlink("src", "s")(t, dir) },
			want: []string{"inside the input directory DIR src"}},
		{name: "commit LOWER UPPER -o UPPER/x.sqfs", args: []string{"commit", "lower", "upper", "-o", "upper/x.sqfs"},
			setup: func(t tester, dir string) { writeFile(t, dir, "lower/a", "a\n"); writeFile(t, dir, "upper/b", "b\n") },
			want:  []string{"output -o upper/x.sqfs is inside the input directory UPPERDIR upper"}},
	})
}

// devNullIntact fails the case if /dev/null or /dev/zero is no longer a
// character device (the bug replaced them with regular files).
func devNullIntact(t tester, dir, out string) {
	for _, p := range []string{"/dev/null", "/dev/zero"} {
		st, err := os.Lstat(p)
		if err != nil || st.Mode()&fs.ModeCharDevice == 0 {
			t.Fatalf("%s is no longer a character device: %v %v", p, st, err)
		}
	}
}

func mkdir(name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// mkblock makes a block device node for a loop device nobody uses: writing
// to it would fail, replacing it is what must not happen.
func mkblock(name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		if err := unix.Mknod(filepath.Join(dir, name), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 250))); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(target, name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func hardlink(existing, name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		if err := os.Link(filepath.Join(dir, existing), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}
