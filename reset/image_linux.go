package reset

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// checkImageFile refuses an image file that a loop device with mounted
// filesystems is backed by, or that another process holds a lock on (QEMU
// takes locks on the disks it runs).
func (t *Target) checkImageFile(st os.FileInfo) error {
	ents, _ := os.ReadDir(sysPath(t.sys, "block"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysPath(t.sys, "block"), e.Name(), "loop", "backing_file"))
		if err != nil {
			continue
		}
		bst, err := os.Stat(strings.TrimSpace(string(b)))
		if err != nil || !os.SameFile(st, bst) {
			continue
		}
		d, err := t.sys.Lookup("/dev/" + e.Name())
		if err != nil {
			continue
		}
		if err := inUse(t.Path+" (attached as /dev/"+e.Name()+")", d); err != nil {
			return err
		}
	}
	f, err := os.Open(t.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		who := "another process"
		if lk.Pid > 0 {
			who = "process " + strconv.Itoa(int(lk.Pid))
		}
		return fmt.Errorf("%s is locked by %s (a QEMU running it?): stop it first", t.Path, who)
	}
	return nil
}
