// Package flash writes disk images to SD cards and USB sticks: safely (it
// refuses the system disk, mounted disks, disks that are not removable
// unless forced, and anything too small), sparsely (only the image's data
// and the regions that must read as zeros are written) and verified (every
// written range is read back bypassing the page cache and compared byte for
// byte with the image).
//
// The host's view of its disks comes from sysfs and mountinfo through a
// System, whose paths tests point at fake trees. A Job does the I/O:
// Open plans the write (SEEK_DATA/SEEK_HOLE extents of the image, plus the
// first and last MiB of the image and of every partition in its GPT or
// MBR, widened to 4 KiB and merged), Write writes 4 MiB chunks with
// O_DIRECT from page-aligned buffers (the partition table last),
// Verify reads them back, Reread asks the kernel for the new table.
package flash
