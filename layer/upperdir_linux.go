package layer

import (
	"fmt"
	"os"
)

// canReadUpperDir refuses to read an upper directory without root.
func canReadUpperDir(dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s: reading an upper directory needs root: its opaque markers are trusted.overlay.* xattrs, invisible to other users (an image's ext4 upper is read without root)", dir)
	}
	return nil
}
