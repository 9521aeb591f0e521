//go:build unix

package infile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "file")
	if err := os.WriteFile(reg, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink("fifo", link); err != nil {
		t.Fatal(err)
	}
	regLink := filepath.Join(dir, "reglink")
	if err := os.Symlink("file", regLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string // want "" means it opens
		disk       bool
	}{
		{reg, "", false},
		{regLink, "", false},
		{fifo, "--x " + fifo + " is a named pipe, not a file", false},
		{link, "is a named pipe", false},
		{sock, "is a socket, not a file", false},
		{"/dev/zero", "is a character device, not a file", false},
		{"/dev/null", "is a character device, not an image file or a block device", true},
		{dir, "is a directory, not a file", false},
		{fifo, "is a named pipe, not an image file or a block device", true},
		{filepath.Join(dir, "missing"), "no such file", false},
	} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			open := Open
			if tc.disk {
				open = OpenDisk
			}
			f, err := open("--x", tc.path)
			if tc.want == "" {
				if err != nil {
					t.Errorf("%s: %v", tc.path, err)
					return
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Errorf("%s: opened, want %q", tc.path, tc.want)
			} else if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: open hangs", tc.path)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile("-c", p)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	var nr *NotRegularError
	if _, err := ReadFile("-c", "/dev/zero"); !errors.As(err, &nr) || nr.What != "-c" {
		t.Fatalf("ReadFile(/dev/zero) = %v, want a NotRegularError for -c", err)
	}
}

// The file is usable (blocking mode restored) after the non-blocking open.
func TestOpenedFileBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open("", p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl, err := fcntlFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	if fl&syscall.O_NONBLOCK != 0 {
		t.Error("O_NONBLOCK left set")
	}
}

func fcntlFlags(f *os.File) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
