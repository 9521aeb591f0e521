package overlay

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
)

func TestDecideClock(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	var zero time.Time
	for _, tc := range []struct {
		name             string
		now, build, save time.Time
		src              string
		want             time.Time
	}{
		{"1970, saved later than build", time.Unix(0, 0), day(1), day(5), ClockSaved, day(5)},
		{"1970, build later than saved", time.Unix(0, 0), day(5), day(1), ClockBuild, day(5)},
		{"1970, no saved time", time.Unix(0, 0), day(5), zero, ClockBuild, day(5)},
		{"1970, no build time", time.Unix(0, 0), zero, day(5), ClockSaved, day(5)},
		{"nothing known", time.Unix(0, 0), zero, zero, ClockKernel, zero},
		{"RTC ahead", day(9), day(5), day(7), ClockKernel, zero},
		{"RTC equal", day(7), day(5), day(7), ClockKernel, zero},
		{"RTC between", day(6), day(5), day(7), ClockSaved, day(7)},
		{"equal sources", time.Unix(0, 0), day(5), day(5), ClockSaved, day(5)},
	} {
		src, got := decideClock(tc.now, tc.build, tc.save)
		if src != tc.src || !got.Equal(tc.want) {
			t.Errorf("%s: %s %v, want %s %v", tc.name, src, got, tc.src, tc.want)
		}
	}
}

func TestParseSavedClock(t *testing.T) {
	want := time.Date(2026, 12, 2, 13, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2026-12-02T13:04:05Z", true},
		{"2026-12-02T13:04:05Z\n", true},
		{"2026-12-02T14:04:05+01:00\n", true},
		{"", false},
		{"garbage", false},
		{"\x00\x00\x00\x00", false},
		{"2026-12-02 13:04:05", false},
		{"9999-12-31T23:59:59Z", false}, // a clock centuries ahead never comes back
		{"2026-12-02T13:04:05Z" + strings.Repeat(" ", maxClockFile), false},
	} {
		got, err := parseSavedClock([]byte(tc.in))
		if tc.ok && (err != nil || !got.Equal(want)) {
			t.Errorf("%.30q: %v %v, want %v", tc.in, got, err, want)
		}
		if !tc.ok && err == nil {
			t.Errorf("%.30q: accepted as %v", tc.in, got)
		}
	}
}

// TestRestoreClock runs the boot step with the setter replaced: the
// saved time wins when later, a bad file is ignored with a warning, a
// setter failure is recorded, and the decision is made once per boot.
func TestRestoreClock(t *testing.T) {
	future := time.Date(2150, 1, 2, 3, 4, 5, 0, time.UTC)
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, file string // file "" : none
		build      time.Time
		setErr     error
		src, setTo string
		log        string
	}{
		{"saved", rfc3339(future), past, nil, ClockSaved, rfc3339(future), "clock set from "},
		{"build", rfc3339(past), future, nil, ClockBuild, rfc3339(future), "to the build time 2150-01-02T03:04:05Z"},
		{"no file", "", future, nil, ClockBuild, rfc3339(future), "clock set"},
		{"garbage", "not a time", future, nil, ClockBuild, rfc3339(future), "warning: /run/rfs/data/rfs-clock: not an RFC 3339 time"},
		{"kept", rfc3339(past), past, nil, ClockKernel, "", ""},
		{"setter fails", rfc3339(future), past, errors.New("EPERM"), ClockKernel, "", "warning: cannot set the clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				os.WriteFile(filepath.Join(dir, agentconf.ClockFile), []byte(tc.file+"\n"), 0o644)
			}
			var out bytes.Buffer
			b := NewBoot(t.TempDir(), &out)
			b.lowerBuilt = tc.build
			var set []time.Time
			b.SetClock = func(t time.Time) error { set = append(set, t); return tc.setErr }
			b.restoreClock(dir)
			b.restoreClock("") // a second attempt: no new decision
			cs := b.Status.Clock
			if cs == nil || cs.Source != tc.src || cs.SetTo != tc.setTo || cs.Build != rfc3339(tc.build) {
				t.Errorf("status %+v", cs)
			}
			if n := len(set); tc.src != ClockKernel && n != 1 || tc.src == ClockKernel && tc.setErr == nil && n != 0 {
				t.Errorf("clock set %d times: %v", n, set)
			}
			if tc.log == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.log) {
				t.Errorf("console %q, want %q", out.String(), tc.log)
			}
		})
	}
}
