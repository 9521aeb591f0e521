//go:build !darwin

package ext4

// offPathDirs: elsewhere mke2fs is on PATH or not installed.
func offPathDirs(string) []string { return nil }
