//go:build !linux

package reset

import (
	"fmt"
	"os"
	"strconv"
)

// checkImageFile refuses an image file that another process holds a lock
// on (QEMU takes locks on the disks it runs), where the host can tell.
// Loop devices are Linux's.
func (t *Target) checkImageFile(os.FileInfo) error {
	pid, locked, err := lockHolder(t.Path)
	if err != nil {
		return err
	}
	if locked {
		who := "another process"
		if pid > 0 {
			who = "process " + strconv.Itoa(pid)
		}
		return fmt.Errorf("%s is locked by %s (a QEMU running it?): stop it first", t.Path, who)
	}
	return nil
}
