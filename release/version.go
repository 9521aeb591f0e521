package release

import (
	"errors"
	"fmt"
	"strings"
)

// The ways Accept refuses a release (test with errors.Is).
var (
	ErrWrongBoard = errors.New("wrong board")
	ErrWrongArch  = errors.New("wrong architecture")
	ErrOlder      = errors.New("older release")
	// ErrUnordered: one of the versions is not of the form CompareVersions
	// orders, so "older" cannot be told; forcing installs it anyway.
	ErrUnordered = errors.New("versions not comparable")
)

// Accept says whether a device of board and arch, running release
// currentVersion ("" when it knows none), may install c: never one for
// another board or arch; not one strictly older than the running one
// (by CompareVersions), nor one whose version cannot be ordered against
// it, unless force. The same release again is accepted.
func (c Config) Accept(board, arch, currentVersion string, force bool) error {
	switch {
	case c.Board != board:
		return fmt.Errorf("release is for board %s, this device is %s: %w", c.Board, board, ErrWrongBoard)
	case c.Arch != arch:
		return fmt.Errorf("release is for arch %s, this device is %s: %w", c.Arch, arch, ErrWrongArch)
	case force || currentVersion == "" || c.Version == currentVersion:
		return nil
	}
	cmp, err := CompareVersions(c.Version, currentVersion)
	switch {
	case err != nil:
		return fmt.Errorf("release version %q, this device runs %q: %w: %v (force to install it anyway)",
			c.Version, currentVersion, ErrUnordered, err)
	case cmp < 0:
		return fmt.Errorf("release version %s is older than this device's %s: %w (force to install it anyway)",
			c.Version, currentVersion, ErrOlder)
	}
	return nil
}

// maxVersion bounds a version string: CompareVersions reads no more.
const maxVersion = 128

// CompareVersions orders two release versions: -1 if a is older than b,
// 0 if they are the same release, +1 if a is newer.
//
// A release version is what rfs push gives it: the build epoch in
// decimal seconds (the default: "1767225600") or --version (the
// project's version:, such as "1.4" or "v2.0.1-rc1"). Both are read as
// [v]N[.N]...[-PRE][+BUILD]: the dotted decimal numbers compare
// numerically, component by component, a missing component counting as
// 0 (1.4 == 1.4.0, 1.10 > 1.9, an epoch is one large number); when they
// are equal, a version with -PRE is older than one without, and two
// -PRE strings compare byte-wise; +BUILD is ignored. Anything else
// (empty, letters in a number, more than 128 bytes) is an error.
func CompareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	n := max(len(va.nums), len(vb.nums))
	for i := range n {
		if c := compareNum(va.num(i), vb.num(i)); c != 0 {
			return c, nil
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0, nil
	case va.pre == "":
		return 1, nil
	case vb.pre == "":
		return -1, nil
	}
	return strings.Compare(va.pre, vb.pre), nil
}

type version struct {
	nums []string // decimal, leading zeros removed ("" is 0)
	pre  string
}

func (v version) num(i int) string {
	if i < len(v.nums) {
		return v.nums[i]
	}
	return ""
}

func parseVersion(s string) (version, error) {
	if s == "" || len(s) > maxVersion {
		return version{}, fmt.Errorf("version %q: want 1 to %d bytes", s, maxVersion)
	}
	rest := s
	if rest[0] == 'v' || rest[0] == 'V' {
		rest = rest[1:]
	}
	rest, _, _ = strings.Cut(rest, "+")
	rest, pre, hasPre := strings.Cut(rest, "-")
	if hasPre && pre == "" {
		return version{}, fmt.Errorf("version %q: empty pre-release after '-'", s)
	}
	var v version
	for _, f := range strings.Split(rest, ".") {
		if f == "" || strings.Trim(f, "0123456789") != "" {
			return version{}, fmt.Errorf("version %q: want numbers separated by dots, such as 1.4 or an epoch", s)
		}
		v.nums = append(v.nums, strings.TrimLeft(f, "0"))
	}
	v.pre = pre
	return v, nil
}

// compareNum compares decimal strings without leading zeros, of any
// length (no overflow).
func compareNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
