package overlay

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/agentconf"
)

// Clock sources recorded in ClockStatus.Source (agentconf.ClockStatus
// uses the same words).
const (
	ClockSaved  = "saved"  // the data partition's agentconf.ClockFile
	ClockBuild  = "build"  // the lower's build time
	ClockKernel = "kernel" // left as the kernel set it (RTC, or 1970)
)

// maxClockFile bounds the read of the saved time: an RFC 3339 time is
// about 30 bytes.
const maxClockFile = 128

// latestSaneClock rejects saved times no device can have reached; a
// clock set centuries ahead would never come back without NTP.
var latestSaneClock = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// ClockStatus is what the init did to the wall clock at boot, so that it
// never starts before the last boot or the image's build.
type ClockStatus struct {
	Source string `json:"source"`           // ClockSaved, ClockBuild or ClockKernel (not set)
	SetTo  string `json:"set_to,omitempty"` // RFC 3339, when the init set the clock
	Kernel string `json:"kernel"`           // the clock the init found (RFC 3339)
	Saved  string `json:"saved,omitempty"`  // the saved time, if one was read
	Build  string `json:"build,omitempty"`  // the build time, if known
	Error  string `json:"error,omitempty"`  // why the clock could not be set or the file was ignored
}

// decideClock picks the time to set: the later of the build time and the
// saved time, if the clock is earlier than it. A zero time is unknown.
// It returns the source and the time (zero for ClockKernel: leave it).
func decideClock(now, build, saved time.Time) (string, time.Time) {
	src, t := ClockSaved, saved
	if build.After(saved) {
		src, t = ClockBuild, build
	}
	if t.IsZero() || !now.Before(t) {
		return ClockKernel, time.Time{}
	}
	return src, t
}

// readSavedClock reads dir/agentconf.ClockFile: one RFC 3339 time. No
// file is a zero time and no error.
func readSavedClock(dir string) (time.Time, error) {
	f, err := os.Open(filepath.Join(dir, agentconf.ClockFile))
	if os.IsNotExist(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxClockFile+1))
	if err != nil {
		return time.Time{}, err
	}
	return parseSavedClock(b)
}

func parseSavedClock(b []byte) (time.Time, error) {
	if len(b) > maxClockFile {
		return time.Time{}, fmt.Errorf("%s: longer than %d bytes", agentconf.ClockFile, maxClockFile)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: not an RFC 3339 time: %.40q", agentconf.ClockFile, b)
	}
	if t.After(latestSaneClock) || t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("%s: implausible time %s", agentconf.ClockFile, t.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// setClock is settimeofday(2); Boot.SetClock replaces it in tests.
func setClock(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Settimeofday(&tv)
}

// restoreClock sets the clock forward to the saved time (dataDir is the
// mounted data partition, "" if none) or the build time, whichever is
// later, once per boot, and records what it did in the status.
func (b *Boot) restoreClock(dataDir string) {
	if b.clock == nil {
		b.clock = b.decideAndSetClock(dataDir)
	}
	b.Status.Clock = b.clock
}

func (b *Boot) decideAndSetClock(dataDir string) *ClockStatus {
	now := time.Now()
	cs := &ClockStatus{Kernel: rfc3339(now), Build: rfc3339(b.lowerBuilt)}
	var saved time.Time
	if dataDir != "" {
		var err error
		if saved, err = readSavedClock(dataDir); err != nil {
			cs.Error = err.Error() + " (ignored)"
			b.Logf("warning: %s/%s", DataDir, cs.Error)
		}
		cs.Saved = rfc3339(saved)
	}
	src, t := decideClock(now, b.lowerBuilt, saved)
	cs.Source = src
	if src == ClockKernel {
		b.Debugf("clock %s kept (not before the saved time %q or the build time %q)", cs.Kernel, cs.Saved, cs.Build)
		return cs
	}
	set := b.SetClock
	if set == nil {
		set = setClock
	}
	if err := set(t); err != nil {
		cs.Source, cs.Error = ClockKernel, "settimeofday: "+err.Error()
		b.Logf("warning: cannot set the clock to the %s time %s: %v", src, rfc3339(t), err)
		return cs
	}
	cs.SetTo = rfc3339(t)
	b.Logf("clock set from %s to the %s time %s", cs.Kernel, src, cs.SetTo)
	return cs
}

// rfc3339 formats t in UTC; "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
