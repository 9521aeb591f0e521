package overlay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/datapart"
)

// maxOSRelease bounds the read of the lower's /etc/os-release: the lower
// may come from anywhere (a layer, a user's image).
const maxOSRelease = 64 << 10

// readBuildID returns BUILD_ID from /etc/os-release of the tree at root
// (the base lower; rfs writes the build ID there, and it covers the root
// and the layers), and the file's mtime: rfs gives every file the build's
// epoch, so it is the image's build time (zero if the file is missing).
// Symlinks resolve inside root.
func readBuildID(root string) (string, time.Time, error) {
	dfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", time.Time{}, err
	}
	defer unix.Close(dfd)
	f, err := openInRoot(dfd, "/etc/os-release", unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("lower /etc/os-release: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return "", time.Time{}, errors.New("lower /etc/os-release is not a regular file")
	}
	id, err := parseBuildID(io.LimitReader(f, maxOSRelease))
	return id, st.ModTime(), err
}

// parseBuildID finds BUILD_ID in os-release content (KEY=value lines,
// the value optionally quoted). An ID that is not a short run of
// printable characters without spaces is an error.
func parseBuildID(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "BUILD_ID=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if v == "" || len(v) > 128 || strings.IndexFunc(v, func(c rune) bool { return c <= ' ' || c >= 0x7f }) >= 0 {
			return "", fmt.Errorf("lower /etc/os-release: odd BUILD_ID %.40q", v)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("lower /etc/os-release: %w", err)
	}
	return "", errors.New("lower /etc/os-release has no BUILD_ID")
}

// recordLower ties a persistent upper to the lower it is used with: it
// compares the lower's build ID with the one in the data partition's
// upper record (datapart.UpperRecord), says so once if they differ, and
// records the current one, so the record names the lower the upper's
// newest changes are made against. A lower without a build ID leaves the
// record alone.
func (b *Boot) recordLower() {
	id := b.lowerBuildID
	if id == "" {
		return
	}
	d := dataDir(b.data.staging)
	rec, err := d.ReadUpperRecord()
	if err != nil {
		b.Logf("warning: %v (rewritten)", err)
	}
	if rec != nil && rec.LowerBuildID == id {
		return
	}
	if rec != nil && rec.LowerBuildID != "" {
		b.Status.Upper.MadeAgainst = rec.LowerBuildID
		b.Logf("the upper on %s was made against build %s; the lower is now build %s", b.data.m.Path, rec.LowerBuildID, id)
	}
	if err := d.WriteUpperRecord(&datapart.UpperRecord{LowerBuildID: id}); err != nil {
		b.Logf("warning: %s: %v", datapart.UpperRecordFile, err)
	}
}
