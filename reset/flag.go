package reset

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image/fat"
)

// FlagResult says what Flag wrote.
type FlagResult struct {
	Target *Target
	All    bool // the flag asks to wipe the volumes too
	// WasSet is the flag's content before ("" if there was none).
	WasSet string
}

// Flag sets the reset flag file (datapart.ResetFlagFile) at the root of the
// FAT boot partition of the image or device at path: content "all" with
// all, else "upper". The init performs the reset at the next boot and
// removes the flag once the wipe is durable. A flag already asking for
// "all" stays "all" (like a pending reset on the device).
func Flag(path string, all bool) (*FlagResult, error) {
	t, err := Inspect(path)
	if err != nil {
		return nil, err
	}
	f, start, err := t.openPart(t.Boot)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fs, err := fat.OpenEditor(f, start)
	if err != nil {
		return nil, fmt.Errorf("%s: boot partition %d: %w", path, t.Boot.Number, err)
	}
	res := &FlagResult{Target: t}
	old, ok, err := fs.ReadFile(datapart.ResetFlagFile)
	if err != nil {
		return nil, fmt.Errorf("%s: boot partition %d: %w", path, t.Boot.Number, err)
	}
	if ok {
		res.WasSet = strings.TrimSpace(string(old))
		all = all || strings.EqualFold(res.WasSet, "all")
		if res.WasSet == "" {
			res.WasSet = "(empty)"
		}
	}
	res.All = all
	content := "upper\n"
	if all {
		content = "all\n"
	}
	if err := fs.WriteSmall(datapart.ResetFlagFile, []byte(content), time.Now()); err != nil {
		return nil, fmt.Errorf("%s: write %s on the boot partition: %w", path, datapart.ResetFlagFile, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, f.Close()
}

// Cancel removes the reset flag; it returns what the flag said, "" if
// there was none.
func Cancel(path string) (string, error) {
	t, err := Inspect(path)
	if err != nil {
		return "", err
	}
	f, start, err := t.openPart(t.Boot)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fs, err := fat.OpenEditor(f, start)
	if err != nil {
		return "", fmt.Errorf("%s: boot partition %d: %w", path, t.Boot.Number, err)
	}
	old, ok, err := fs.ReadFile(datapart.ResetFlagFile)
	if err != nil || !ok {
		return "", err
	}
	if _, err := fs.Remove(datapart.ResetFlagFile); err != nil {
		return "", fmt.Errorf("%s: remove %s: %w", path, datapart.ResetFlagFile, err)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if c := strings.TrimSpace(string(old)); c != "" {
		return c, f.Close()
	}
	return "(empty)", f.Close()
}

// FlagSet returns the content of the reset flag on the image or device at
// path, and whether it is there.
func FlagSet(path string) (content string, ok bool, err error) {
	t, err := Inspect(path)
	if err != nil {
		return "", false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	fs, err := fat.OpenEditor(readOnly{f}, t.Boot.Start)
	if err != nil {
		return "", false, fmt.Errorf("%s: boot partition %d: %w", path, t.Boot.Number, err)
	}
	b, ok, err := fs.ReadFile(datapart.ResetFlagFile)
	return string(b), ok, err
}

type readOnly struct{ *os.File }

func (readOnly) WriteAt([]byte, int64) (int, error) { return 0, os.ErrPermission }
