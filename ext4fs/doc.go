// Package ext4fs is a read-only ext4 (and ext2/ext3) reader for untrusted
// media: a data partition from a card found in the field may hold anything,
// so every field it uses is checked against what the partition can hold
// before it decides an allocation, a loop or an offset. Nothing panics,
// nothing allocates by a size the medium does not back, every walk is
// bounded and cycles are errors.
//
// It reads the superblock, group descriptors (32/64-bit, meta_bg), inodes,
// extent trees and the old block maps, linear and htree directories (an
// htree is read as its linear blocks), inline data, fast and slow symlinks,
// xattrs (in the inode and in an xattr block) and device numbers. A
// filesystem that needs recovery (a card pulled from a device that lost
// power) is seen as the kernel would mount it: Open replays the journal in
// memory (package jbd2) and every read of the medium goes through
// (*FS).read, which reads a block the journal holds from its newest
// committed copy. The medium is never written.
//
// Only the standard library: the on-device init may use it.
package ext4fs
