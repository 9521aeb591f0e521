package ext4

import "path/filepath"

// offPathDirs are where Homebrew keeps e2fsprogs (keg-only, so not on
// PATH): $(brew --prefix e2fsprogs)/sbin under $HOMEBREW_PREFIX, and the
// default prefixes of Apple silicon and Intel Macs.
func offPathDirs(brewPrefix string) []string {
	var dirs []string
	if brewPrefix != "" {
		dirs = append(dirs, filepath.Join(brewPrefix, "opt/e2fsprogs/sbin"))
	}
	return append(dirs, "/opt/homebrew/opt/e2fsprogs/sbin", "/usr/local/opt/e2fsprogs/sbin")
}
