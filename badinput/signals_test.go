package badinput

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Workloads for the signal cases, made once per run outside the cases'
// scratch directories (they are inputs only) and named by absolute path.
var workload struct {
	once sync.Once
	dir  string
	err  error
}

const (
	// textMB of text that compresses slowly (gzip level 9 takes about
	// 20 s for 1 GB on this 2-CPU machine; the digest of a build reads it
	// in about 1 s): an uninterrupted build or squashfs of it runs past
	// signalDeadline, an interrupted one ends in milliseconds.
	textMB = 1024
	// sparseGB of holes in each of the lower's and upper's one file: diff
	// compares, and commit squashes, every byte (minutes), using no disk.
	sparseGB = 256
	// signalDeadline is each signal case's whole time, start to exit.
	signalDeadline = 15 * time.Second
)

// workloadDir returns the workload directory: text/ (many MB of
// random-looking text in 16 files), lower/ and upper/ (one sparse file
// each, same size, mode and time, so a diff compares their content).
func workloadDir(t tester) string {
	t.Helper()
	workload.once.Do(func() {
		workload.dir, workload.err = makeWorkload()
	})
	if workload.err != nil {
		t.Fatal(workload.err)
	}
	return workload.dir
}

func makeWorkload() (string, error) {
	dir, err := os.MkdirTemp("", "rfs-badinput-work-")
	if err != nil {
		return "", err
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if err := os.Mkdir(filepath.Join(dir, "text"), 0o755); err != nil {
		return "", err
	}
	x := uint64(0x9e3779b97f4a7c15)
	line := make([]byte, 4<<20)
	for f := range 16 {
		w, err := os.Create(filepath.Join(dir, "text", fmt.Sprintf("f%02d", f)))
		if err != nil {
			return "", err
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		for range textMB / 16 / 4 {
			for i := range line {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				line[i] = alphabet[x&63]
				if i%100 == 99 {
					line[i] = '\n'
				}
			}
			bw.Write(line)
		}
		if err := bw.Flush(); err != nil {
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
	}
	mtime := time.Unix(1700000000, 0)
	for _, d := range []string{"lower", "upper"} {
		p := filepath.Join(dir, d, "huge")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return "", err
		}
		if err := os.Truncate(p, sparseGB<<30); err != nil {
			return "", err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return "", err
		}
		if err := os.Chtimes(filepath.Dir(p), mtime, mtime); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// TestSignals: SIGINT, SIGTERM and SIGHUP during build, squashfs, diff and
// commit stop them within the deadline (far below the uninterrupted run),
// with "interrupted", the shell's exit status 128+signal, and no temp file
// left in the directory or in TMPDIR (the runner checks both).
func TestSignals(t *testing.T) {
	w := workloadDir(t)
	t.Cleanup(func() { os.RemoveAll(w) })
	text := filepath.Join(w, "text")
	lower, upper := filepath.Join(w, "lower"), filepath.Join(w, "upper")
	var cases []badCase
	for _, s := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		name := strings.ToLower(sigName(s.sig))
		cases = append(cases,
			// After the initramfs line the image's temp file is being
			// written: boot partition, then the root squashfs.
			badCase{name: "build " + name, args: []string{"build", "--files", text + ":/data", "-o", "{dir}/x.img"},
				signal: s.sig, signalAfter: `initramfs`, code: s.code, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
			badCase{name: "squashfs " + name, args: []string{"squashfs", text, "-o", "{dir}/out.sqfs"},
				signal: s.sig, code: s.code, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
		)
	}
	cases = append(cases,
		badCase{name: "squashfs -processors 1 sigint", args: []string{"squashfs", text, "{dir}/out.sqfs", "-processors", "1"},
			signal: syscall.SIGINT, code: 130, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
		badCase{name: "squashfs of sparse files sigterm", args: []string{"squashfs", upper, "-o", "{dir}/out.sqfs"},
			signal: syscall.SIGTERM, code: 143, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
		badCase{name: "diff sigint", args: []string{"diff", lower, upper},
			signal: syscall.SIGINT, code: 130, want: []string{"rfs: interrupted"}, timeout: signalDeadline, root: true},
		badCase{name: "diff sighup", args: []string{"diff", lower, upper, "--json"},
			signal: syscall.SIGHUP, code: 129, want: []string{"rfs: interrupted"}, timeout: signalDeadline, root: true},
		badCase{name: "commit sigint", args: []string{"commit", lower, upper, "-o", "{dir}/layer.sqfs"},
			signal: syscall.SIGINT, code: 130, want: []string{"rfs: interrupted"}, timeout: signalDeadline, root: true},
		badCase{name: "commit flatten sigterm", args: []string{"commit", lower, upper, "-o", "{dir}/root.sqfs", "--flatten"},
			signal: syscall.SIGTERM, code: 143, want: []string{"rfs: interrupted"}, timeout: signalDeadline, root: true},
		badCase{name: "commit sighup", args: []string{"commit", lower, upper, "-o", "{dir}/layer.sqfs"},
			signal: syscall.SIGHUP, code: 129, want: []string{"rfs: interrupted"}, timeout: signalDeadline, root: true},
	)
	// rfs run, with a stand-in QEMU (not installed here) that boots
	// forever: interrupted in the interactive and the --expect modes,
	// the run directory goes and the message is not QEMU's death.
	path := []string{"PATH={dir}/bin:" + os.Getenv("PATH")}
	cases = append(cases,
		badCase{name: "run sigterm", args: []string{"run", "{image}"}, env: path, setup: fakeQEMU,
			signal: syscall.SIGTERM, signalAfter: "Booting", code: 143, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
		badCase{name: "run sighup", args: []string{"run", "{image}"}, env: path, setup: fakeQEMU,
			signal: syscall.SIGHUP, signalAfter: "Booting", code: 129, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
		badCase{name: "run --expect sigint", args: []string{"run", "{image}", "--expect", "never", "--timeout", "5m"}, env: path, setup: fakeQEMU,
			signal: syscall.SIGINT, signalAfter: "Booting", code: 130, want: []string{"rfs: interrupted"}, timeout: signalDeadline},
	)
	for _, c := range cases {
		c.check = noContextCanceled
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
}

// fakeQEMU is a setup step: a qemu-system-aarch64 in dir/bin that says it
// boots and then waits.
func fakeQEMU(t tester, dir string) {
	writeFile(t, dir, "bin/qemu-system-aarch64", "#!/bin/sh\necho 'Booting Linux'\nexec sleep 300\n")
	if err := os.Chmod(filepath.Join(dir, "bin/qemu-system-aarch64"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// noContextCanceled: the message is the interruption, not Go's wording.
func noContextCanceled(t tester, dir, out string) {
	if strings.Contains(out, "context canceled") || strings.Contains(out, "QEMU exited") {
		t.Errorf("output says why Go or QEMU stopped; want only that rfs was interrupted")
	}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// mkfifo is a setup step: a named pipe at dir/name.
func mkfifo(name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mksocket is a setup step: a bound unix socket at dir/name, left behind
// as a socket file (its descriptor is closed).
func mksocket(name string) func(t tester, dir string) {
	return func(t tester, dir string) {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(dir, name)}); err != nil {
			t.Fatal(err)
		}
	}
}

func steps(fns ...func(t tester, dir string)) func(t tester, dir string) {
	return func(t tester, dir string) {
		for _, f := range fns {
			f(t, dir)
		}
	}
}

// TestSpecialFileInputs: a named pipe, a character device or a socket
// given where rfs reads a file is refused at once with a message naming
// the option and the file type (open(2) of a FIFO used to block forever,
// deaf to Ctrl-C; /dev/zero never ends).
func TestSpecialFileInputs(t *testing.T) {
	const d = 20 * time.Second
	pipe := []string{"is a named pipe, not"}
	runCases(t, []badCase{
		{name: "build --kernel fifo", args: []string{"build", "--kernel", "{dir}/fifo", "-o", "{dir}/x.img"}, setup: mkfifo("fifo"), want: []string{"--kernel {dir}/fifo is a named pipe, not a file"}, timeout: d},
		{name: "build --kernel dir with fifo vmlinuz", args: []string{"build", "--kernel", "{dir}/k", "-o", "{dir}/x.img"}, setup: mkfifo("k/vmlinuz"), want: []string{"--kernel {dir}/k/vmlinuz is a named pipe"}, timeout: d},
		{name: "build --kernel /dev/zero", args: []string{"build", "--kernel", "/dev/zero", "-o", "{dir}/x.img"}, want: []string{"--kernel /dev/zero is a character device, not a file"}, timeout: d},
		{name: "build --kernel socket", args: []string{"build", "--kernel", "{dir}/sock", "-o", "{dir}/x.img"}, setup: mksocket("sock"), want: []string{"is a socket, not a file"}, timeout: d},
		{name: "build --layer fifo", args: []string{"build", "--layer", "{dir}/fifo", "-o", "{dir}/x.img"}, setup: mkfifo("fifo"), want: []string{"--layer {dir}/fifo is a named pipe, not a file"}, timeout: d},
		{name: "build --layer /dev/null", args: []string{"build", "--layer", "/dev/null", "-o", "{dir}/x.img"}, want: []string{"--layer /dev/null is a character device"}, timeout: d},
		{name: "build -c fifo", args: []string{"build", "-c", "{dir}/rfs.yaml", "-o", "{dir}/x.img"}, setup: mkfifo("rfs.yaml"), want: []string{"project file {dir}/rfs.yaml is a named pipe"}, timeout: d},
		{name: "build ./rfs.yaml fifo", args: []string{"build", "-o", "{dir}/x.img"}, setup: mkfifo("rfs.yaml"), want: []string{"project file rfs.yaml is a named pipe"}, timeout: d},
		{name: "build -c /dev/zero", args: []string{"build", "-c", "/dev/zero"}, want: []string{"project file /dev/zero is a character device"}, timeout: d},
		{name: "build --efi-stub fifo", args: []string{"build", "--board", "pc", "--efi-stub", "{dir}/stub", "-o", "{dir}/x.img"}, setup: mkfifo("stub"), want: []string{"--efi-stub {dir}/stub is a named pipe"}, timeout: d},
		{name: "project kernel: fifo", args: []string{"build", "-o", "{dir}/x.img"}, setup: steps(mkfifo("k"), func(t tester, dir string) { writeFile(t, dir, "rfs.yaml", "kernel: k\n") }), want: []string{"kernel (project file)", "is a named pipe"}, timeout: d},
		{name: "project layers: fifo", args: []string{"build", "-o", "{dir}/x.img"}, setup: steps(mkfifo("l.sqfs"), func(t tester, dir string) { writeFile(t, dir, "rfs.yaml", "layers: [l.sqfs]\n") }), want: []string{"layers (project file)", "is a named pipe"}, timeout: d},
		{name: "project efi_stub: fifo", args: []string{"build", "-o", "{dir}/x.img"}, setup: steps(mkfifo("s"), func(t tester, dir string) { writeFile(t, dir, "rfs.yaml", "board: pc\nefi_stub: s\n") }), want: []string{"efi_stub (project file)", "is a named pipe"}, timeout: d},
		{name: "diff fifo", args: []string{"diff", "{dir}/img"}, setup: mkfifo("img"), want: append(pipe, "image {dir}/img"), timeout: d},
		{name: "diff lower fifo", args: []string{"diff", "{dir}/lower.sqfs", "{dir}/upper"}, setup: steps(mkfifo("lower.sqfs"), func(t tester, dir string) { writeFile(t, dir, "upper/x", "x") }), want: append(pipe, "lower {dir}/lower.sqfs"), timeout: d, root: true},
		{name: "commit fifo", args: []string{"commit", "{dir}/img", "-o", "{dir}/x.sqfs"}, setup: mkfifo("img"), want: append(pipe, "image {dir}/img"), timeout: d},
		{name: "commit /dev/zero", args: []string{"commit", "/dev/zero", "-o", "{dir}/x.sqfs"}, want: []string{"image /dev/zero is a character device"}, timeout: d},
		{name: "inspect fifo", args: []string{"inspect", "{dir}/img"}, setup: mkfifo("img"), want: append(pipe, "image {dir}/img"), timeout: d},
		{name: "inspect socket", args: []string{"inspect", "{dir}/sock"}, setup: mksocket("sock"), want: []string{"is a socket"}, timeout: d},
		{name: "run fifo", args: []string{"run", "{dir}/img"}, setup: mkfifo("img"), want: append(pipe, "image {dir}/img"), timeout: d},
		{name: "run /dev/zero", args: []string{"run", "/dev/zero", "--dry-run"}, want: []string{"image /dev/zero is a character device"}, timeout: d},
		{name: "reset fifo", args: []string{"reset", "{dir}/img"}, setup: mkfifo("img"), want: []string{"neither an image file nor a block device"}, timeout: d},
		{name: "flash fifo image", args: []string{"flash", "{dir}/img", "{dir}/card.img", "--to-file"}, setup: mkfifo("img"), want: []string{"image {dir}/img is not a regular file"}, timeout: d},
		{name: "squashfs fifo source", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs"}, setup: mkfifo("src"), want: []string{"not a directory"}, timeout: d},
	})
}

// TestResourceBounds: counts and sizes that would make rfs allocate
// without bound (or write a filesystem's metadata for 100 TiB) are
// refused with the accepted range.
func TestResourceBounds(t *testing.T) {
	src := func(t tester, dir string) { writeFile(t, dir, "src/a", "a") }
	runCases(t, []badCase{
		{name: "squashfs --processors 100000000", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "--processors", "100000000"}, setup: src, want: []string{"--processors 100000000: want 1 to"}},
		{name: "squashfs -processors 100000", args: []string{"squashfs", "{dir}/src", "{dir}/x.sqfs", "-processors", "100000"}, setup: src, want: []string{"--processors 100000: want 1 to"}},
		{name: "squashfs --processors -1", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "--processors", "-1"}, setup: src, want: []string{"want 1 to"}},
		{name: "squashfs -b 16G", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "-b", "16G"}, setup: src, want: []string{`--block-size "16G"`, "power of two from 4K to 1M"}},
		{name: "squashfs -b 2M", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "-b", "2M"}, setup: src, want: []string{"power of two from 4K to 1M"}},
		{name: "squashfs --xz-dict-size 1T", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "--comp", "xz", "--xz-dict-size", "1T"}, setup: src, want: []string{`--xz-dict-size "1T"`, "up to the block size"}},
		{name: "squashfs --level 1000000000", args: []string{"squashfs", "{dir}/src", "-o", "{dir}/x.sqfs", "--level", "1000000000"}, setup: src, want: []string{"out of range 1..9"}},
		{name: "build --data-size 100T", args: []string{"build", "--data-size", "100T", "-o", "{dir}/x.img"}, want: []string{"at most 16 GiB"}},
		{name: "build --data-size 17G", args: []string{"build", "--data-size", "17G", "-o", "{dir}/x.img"}, want: []string{"at most 16 GiB"}},
		{name: "build --size 100T", args: []string{"build", "--size", "100T", "-o", "{dir}/x.img"}, want: []string{"at most 2 TiB"}},
		{name: "run --memory 100000000G", args: []string{"run", "{image}", "--memory", "100000000G", "--dry-run"}, want: []string{`--memory "100000000G"`, "from 64M to 1T"}},
		{name: "run --memory 99999M", args: []string{"run", "{image}", "--memory", "99999M", "--dry-run"}, want: []string{"this host's memory"}},
		{name: "run --memory 1K", args: []string{"run", "{image}", "--memory", "1K", "--dry-run"}, want: []string{"from 64M to 1T"}},
	})
}

// TestRunKilled: when rfs run is killed outright (SIGKILL: no cleanup at
// all), QEMU dies with it, and the next rfs run removes the directory the
// killed one left in TMPDIR. QEMU is a stand-in script here (the test is
// about rfs, not the guest): it records its PID and sleeps.
func TestRunKilled(t *testing.T) {
	img := fixtureImage(t)
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{tmp, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pidFile := filepath.Join(dir, "qemu.pid")
	script := "#!/bin/sh\necho $$ > " + pidFile + "\necho 'Booting Linux'\n[ -n \"$FAKE_QEMU_EXIT\" ] && exit 1\nexec sleep 300\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-aarch64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TMPDIR="+tmp, "PATH="+bin+":"+os.Getenv("PATH"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rfs := exec.CommandContext(ctx, rfsBin, "run", img, "--timeout", "5m")
	rfs.Env = env
	var out lockedBuffer
	rfs.Stdout, rfs.Stderr = &out, &out
	if err := rfs.Start(); err != nil {
		t.Fatal(err)
	}
	var qemuPID int
	for qemuPID == 0 || !strings.Contains(out.String(), "Booting") {
		if ctx.Err() != nil {
			t.Fatalf("QEMU did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
		b, _ := os.ReadFile(pidFile)
		qemuPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	defer syscall.Kill(qemuPID, syscall.SIGKILL)
	runDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(tmp, "rfs-run-*"))
		return m
	}
	if want := fmt.Sprintf("rfs-run-%d-", rfs.Process.Pid); len(runDirs()) != 1 || !strings.HasPrefix(filepath.Base(runDirs()[0]), want) {
		t.Fatalf("run directories %v, want one %s*", runDirs(), want)
	}
	rfs.Process.Signal(syscall.SIGKILL)
	rfs.Wait()
	for !gone(qemuPID) {
		if ctx.Err() != nil {
			t.Fatalf("QEMU (pid %d) still runs after rfs was killed", qemuPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(runDirs()) != 1 {
		t.Fatalf("after SIGKILL: run directories %v, want the killed run's", runDirs())
	}

	// The next run (QEMU failing at once) removes the stale directory and
	// its own.
	next := exec.CommandContext(ctx, rfsBin, "run", img, "--expect", "never", "--timeout", "30s")
	next.Env = append(env, "FAKE_QEMU_EXIT=1")
	o, err := next.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("second run: %v\n%s", err, o)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("TMPDIR after the next run holds %v, want nothing", left)
	}
}

// gone says whether pid has exited (a zombie waiting for its reaper
// counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && regexp.MustCompile(`^\) Z`).MatchString(s[i:])
}
