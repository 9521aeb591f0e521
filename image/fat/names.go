package fat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNameUnits is the longest long file name VFAT can store, in UTF-16 code
// units.
const maxNameUnits = 255

// checkName reports whether name can be stored as a VFAT long file name
// that every reader (Linux vfat, Windows, mtools, the Pi firmware) sees
// unchanged.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid name", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		switch {
		case r < 0x20:
			return fmt.Errorf("name %q contains control character %U, not allowed on FAT", name, r)
		case strings.ContainsRune(`"*/:<>?\|`, r):
			return fmt.Errorf("name %q contains %q, not allowed on FAT", name, r)
		}
	}
	// Windows and Linux vfat strip trailing dots and spaces from names, so
	// such a name would not be found under the name it was stored with.
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return fmt.Errorf("name %q ends with %q, which FAT drivers strip", name, last)
	}
	if n := len(utf16.Encode([]rune(name))); n > maxNameUnits {
		return fmt.Errorf("name %q is %d UTF-16 units long, FAT allows at most %d", name, n, maxNameUnits)
	}
	return nil
}

// foldKey is the key under which FAT drivers compare names: they are case
// insensitive, so two names with the same key cannot share a directory.
func foldKey(name string) string {
	return strings.Map(unicode.ToUpper, name)
}

// isShortChar reports whether c may appear in an 8.3 short name (upper-case
// ASCII only; we never produce OEM code page characters).
func isShortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c >= 0x80 || c <= 0x20:
		return false
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// asShort returns the 11-byte short name (space padded, no dot) if name is
// a valid 8.3 name once ASCII upper-cased.
func asShort(name string) (sn [11]byte, ok bool) {
	up := []byte(name)
	for i, c := range up {
		if c >= 'a' && c <= 'z' {
			up[i] = c - 'a' + 'A'
		}
	}
	base, ext, dotted := strings.Cut(string(up), ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || (dotted && len(ext) == 0) {
		return sn, false
	}
	for _, c := range up {
		if c != '.' && !isShortChar(c) {
			return sn, false
		}
	}
	if strings.Contains(ext, ".") {
		return sn, false
	}
	copy(sn[:], "           ")
	copy(sn[:8], base)
	copy(sn[8:], ext)
	return sn, true
}

// needsLFN reports whether name needs long-name entries: every name that is
// not exactly its own upper-case 8.3 short name does, so case is preserved.
func needsLFN(name string) bool {
	_, ok := asShort(name)
	return !ok || name != strings.ToUpper(name)
}

// slotsFor is the number of 32-byte directory entries name takes.
func slotsFor(name string) int {
	if !needsLFN(name) {
		return 1
	}
	n := len(utf16.Encode([]rune(name)))
	return 1 + (n+12)/13
}

// basis returns the primary (up to 8 chars) and extension (up to 3 chars) of
// the short-name basis for a long name, after fatgen103's basis-name
// generation: upper-case, characters invalid in short names become '_',
// spaces and leading periods are dropped, the extension is what follows the
// last period, and periods inside the primary part are dropped.
func basis(name string) (primary, ext string) {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == ' ':
			continue
		case r == '.':
			b.WriteByte('.')
		case r < 0x80 && isShortChar(byte(unicode.ToUpper(r))):
			b.WriteByte(byte(unicode.ToUpper(r)))
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		ext = s[i+1:]
		s = s[:i]
	}
	primary = strings.ReplaceAll(s, ".", "")
	if len(primary) > 8 {
		primary = primary[:8]
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	if primary == "" {
		primary = "_"
	}
	return primary, ext
}

// shortNamer hands out unique short names within one directory.
type shortNamer struct {
	used map[[11]byte]bool
	next map[string]int // basis -> next tail number to try
}

func newShortNamer() *shortNamer {
	return &shortNamer{used: map[[11]byte]bool{}, next: map[string]int{}}
}

// reserve takes sn for a name that is its own short name (or differs only in
// case). It reports false if sn is taken.
func (s *shortNamer) reserve(sn [11]byte) bool {
	if s.used[sn] {
		return false
	}
	s.used[sn] = true
	return true
}

// generate returns a fresh short name with a numeric tail (~1, ~2, ...) for
// a long name.
func (s *shortNamer) generate(name string) ([11]byte, error) {
	primary, ext := basis(name)
	key := primary + "." + ext
	n := s.next[key]
	if n == 0 {
		n = 1
	}
	for ; n <= 999999; n++ {
		tail := "~" + strconv.Itoa(n)
		p := primary
		if len(p)+len(tail) > 8 {
			p = p[:8-len(tail)]
		}
		var sn [11]byte
		copy(sn[:], "           ")
		copy(sn[:8], p+tail)
		copy(sn[8:], ext)
		if !s.used[sn] {
			s.used[sn] = true
			s.next[key] = n + 1
			return sn, nil
		}
	}
	return [11]byte{}, fmt.Errorf("no free short name for %q", name)
}

// lfnChecksum is the checksum of a short name stored in every long-name
// entry that belongs to it (fatgen103, "ChkSum").
func lfnChecksum(sn [11]byte) byte {
	var sum byte
	for _, c := range sn {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// checkLabel validates and formats a volume label.
func checkLabel(label string) ([11]byte, error) {
	var out [11]byte
	if label == "" {
		label = "BOOT"
	}
	up := strings.ToUpper(label)
	if len(up) > 11 {
		return out, fmt.Errorf("volume label %q is longer than 11 characters", label)
	}
	if up[0] == ' ' {
		return out, fmt.Errorf("volume label %q starts with a space", label)
	}
	for i := 0; i < len(up); i++ {
		if up[i] != ' ' && !isShortChar(up[i]) {
			return out, fmt.Errorf("volume label %q contains %q, not allowed in a FAT label", label, up[i])
		}
	}
	copy(out[:], "           ")
	copy(out[:], up)
	return out, nil
}
