package reset

import (
	"errors"
	"os"
	"time"

	"github.com/rfsbuild/rfs/datapart"
)

// ErrNotRoot is returned by Now without root privileges.
var ErrNotRoot = errors.New("--now mounts the data partition: run as root, or drop --now to set the flag the device acts on at next boot")

var geteuid = os.Geteuid // tests pretend not to be root

// NowResult says what Now did.
type NowResult struct {
	Target *Target
	Record *datapart.ResetRecord
	Device string        // what was mounted: a partition node or a loop device
	Took   time.Duration // mount, wipe (renames + fsyncs), deletion of the old files, unmount
	// FlagPending is the reset flag's content when one is also set on the
	// boot partition: the device resets once more at its next boot.
	FlagPending string
}
