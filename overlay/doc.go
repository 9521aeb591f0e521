// Package overlay is the logic of rfs-init, the init (PID 1) that rfs packs
// into the initramfs of every image, plus the pieces the host tools reuse:
// kernel command line parsing (Params), the on-device status record
// (Status, /run/rfs/status.json) and partition table lookup (ReadTable,
// Table.Find) over an io.ReaderAt.
//
// # Boot sequence
//
//  1. mount devtmpfs /dev, proc /proc, sysfs /sys, tmpfs /run (mode 0755)
//  2. parse /proc/cmdline (see below)
//  3. wait for the root partition (poll sysfs every 25 ms, read every disk's
//     MBR/GPT table, match the PARTUUID), check the squashfs magic "hsqs".
//     If the partition is in a table but the kernel made no device for it
//     within 250 ms (a kernel without CONFIG_MSDOS_PARTITION or
//     CONFIG_EFI_PARTITION), the init adds it itself (BLKPG, like partx -a).
//  4. mount the squashfs read-only at /run/rfs/lower; a tmpfs at
//     /run/rfs/.upper-rw with upper/ and work/ in it; overlay at /sysroot with
//     lowerdir=/run/rfs/lower,upperdir=/run/rfs/.upper-rw/upper,
//     workdir=/run/rfs/.upper-rw/work,redirect_dir=off,index=off,metacopy=off;
//     then bind the upper read-only at /run/rfs/upper and detach the rw
//     staging mount (overlayfs holds private clones of its layer mounts)
//  5. write /run/rfs/status.json (type Status) atomically
//  6. switch_root: move /dev /proc /sys /run into /sysroot, delete the
//     initramfs contents (same filesystem only, and only if / is a
//     ramfs/tmpfs), MS_MOVE /sysroot onto /, chroot, print
//     "rfs: overlay ready (lower=DEV squashfs, upper=tmpfs size=S, Nms)" and
//     exec rfs.init
//  7. any failure: "rfs: ERROR: ..." lines (what failed, what was looked
//     for, every block device seen with its partition ids), then a rescue
//     shell (/bin/sh). When the shell exits, the boot is retried from step 2.
//     PID 1 never returns.
//
// Every console line written by the init starts with "rfs: ".
//
// # Kernel command line contract
//
// Parameters are whitespace separated; a value may be double-quoted
// (rfs.init="/bin/my init"). Everything after a lone "--" is passed as
// arguments to rfs.init. A parameter given twice: the last one wins.
//
//	rfs.root=PARTUUID=<id>
//	    The root (lower layer) partition, a squashfs. <id> is either
//	    - a GPT unique partition GUID, 8-4-4-4-12 hex digits
//	      (e.g. PARTUUID=6f3b1c8e-2a4d-4c1b-9e55-0a1b2c3d4e5f), or
//	    - an MBR id xxxxxxxx-NN: the 32-bit disk signature (bytes 440..443
//	      of the MBR, printed as a little-endian number, as Linux does) and
//	      the partition number in hex, 2 digits (logical partitions are
//	      05, 06, ...). Raspberry Pi images use this form.
//	    Case does not matter. All attached disks are searched; a disk with
//	    a different PARTUUID (e.g. a second rfs image) is ignored.
//	rfs.root=/dev/NAME
//	    A plain device path (e.g. /dev/vda2, /dev/mmcblk0p2); the init
//	    waits for it to appear.
//	    If rfs.root is absent, the kernel's root= is used with the same
//	    syntax; if both are absent, boot fails with a clear message.
//	rfs.upper=tmpfs | rfs.upper=tmpfs:size=N
//	    The writable upper layer. tmpfs: every boot starts from the factory
//	    state. N is a tmpfs size: a number of bytes with an optional k/m/g
//	    suffix (K/M/G accepted) or a percentage of RAM (default 50%).
//	    Any other mode (e.g. the planned data:PARTUUID=...) logs a warning,
//	    falls back to tmpfs and sets status.json's "degraded" reason.
//	rfs.init=/path
//	    Program to exec as PID 1 in the new root (default /sbin/init),
//	    argv[0] is the path. Must be absolute and exist in the new root
//	    (checked before the initramfs is deleted).
//	rfs.shell | rfs.shell=before
//	    Start the rescue shell after /dev,/proc,/sys,/run are mounted and
//	    before anything else; when the shell exits, the boot continues.
//	rfs.shell=after
//	    Mount everything (lower, upper, overlay at /sysroot, status.json),
//	    then start the rescue shell; when it exits, switch_root continues.
//	rfs.rootwait=SECONDS
//	    How long to wait for the root device (default 30; decimals
//	    allowed; 0 = look once).
//	rfs.debug
//	    Verbose: every disk scan, partition table and mount is logged.
//
// Unknown rfs.* parameters and invalid values produce a
// "rfs: warning: ..." line and the default is used; they never fail the
// boot. Parameters not starting with rfs. (except root=) are ignored.
//
// # Files on the booted device
//
//	/run/rfs/lower        the squashfs (read-only)
//	/run/rfs/upper        the upper layer's upper dir, bound read-only
//	                      (what changed since the factory state)
//	/run/rfs/status.json  Status, JSON
//
// Note: /proc/self/mountinfo shows the overlay's upperdir= and workdir= as
// /run/rfs/.upper-rw/..., a staging path that is detached after the mount;
// the upper's contents are at /run/rfs/upper (status.json says so).
//
// The version recorded in status.json is Version, set at build time with
// -ldflags "-X github.com/rfsbuild/rfs/overlay.Version=v1.2.3".
package overlay
