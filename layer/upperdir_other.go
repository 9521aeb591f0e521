//go:build !linux

package layer

// canReadUpperDir refuses: an upper directory is overlayfs's, on Linux.
func canReadUpperDir(dir string) error { return upperDirNeedsLinux(dir) }
