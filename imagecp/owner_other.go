//go:build !unix

package imagecp

import "io/fs"

// owner: files have no Unix owner on this host: root's.
func owner(fs.FileInfo) (uint32, uint32) { return 0, 0 }

// rdev: no device nodes on this host.
func rdev(fs.FileInfo) (uint32, uint32) { return 0, 0 }
