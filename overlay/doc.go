// Package overlay is the logic of rfs-init, the init (PID 1) that rfs packs
// into the initramfs of every image: only what runs on the device. No host
// package imports it. What the host tools share with it lives in packages
// both import: the partition tables (ptable), the kernel command line
// (bootparam), the data partition's layout, reset state machine and
// volumes (datapart), the ext4 and squashfs superblocks (ext4fs/ext4sb,
// squashfs/sqsb) and atomic writes (atomicfile).
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
//  4. mount the squashfs read-only at /run/rfs/lower; then each layer of
//     rfs.layers, bottom to top: find it (same scan as the root, up to
//     DataWait = 3 s each), check the squashfs magic, mount it read-only at
//     /run/rfs/layers/N (N from 1). A missing, non-squashfs or unmountable
//     layer (or an unparsable rfs.layers) fails the boot (step 9): the
//     merged view without it would be wrong, so it is never skipped.
//  5. with rfs.data: the data partition (see "Data partition" below): find
//     it (same scan as the root, up to DataWait = 3 s more), check the ext4
//     magic, mount it at /run/rfs/.data-rw; restore the clock (below);
//     complete a pending reset, then
//     perform a requested one (rfs.reset, flag file on rfs.boot); grow the
//     partition and the filesystem to the end of the disk; check free
//     space. Anything wrong degrades the boot to a tmpfs upper (below).
//     Without a data partition the clock is restored from the build time
//     alone.
//  6. the upper: rfs.upper=data and a usable data partition: upper/ and
//     work/ on it; otherwise a tmpfs at /run/rfs/.upper-rw with upper/ and
//     work/ (the upper dir gets the owner and mode of the topmost lower's
//     root). Overlay at /sysroot with lowerdir=/run/rfs/layers/K:...:
//     /run/rfs/layers/1:/run/rfs/lower (top first),upperdir=...,
//     workdir=...,redirect_dir=off,index=off,metacopy=off (never volatile);
//     bind the upper read-only at /run/rfs/upper; seed (once) and bind the
//     volumes; bind the data partition at /run/rfs/data with upper/ and
//     work/ covered read-only; mount the host directories of rfs.mount
//     (below); detach the rw staging mounts (overlayfs holds private clones
//     of its layer mounts); copy the init to /run/rfs/bin/rfs-init
//  7. write /run/rfs/status.json (type Status) atomically
//  8. switch_root: move /dev /proc /sys /run into /sysroot, delete the
//     initramfs contents (same filesystem only, and only if / is a
//     ramfs/tmpfs), MS_MOVE /sysroot onto /, chroot, print
//     "rfs: overlay ready (lower=DEV squashfs, upper=tmpfs size=S, Nms)"
//     (with layers: "lower=DEV squashfs +K layers", "+1 layer")
//     (data upper: "upper=data DEV"; a degraded boot: "upper=tmpfs size=S,
//     DEGRADED" after a "rfs: DEGRADED: why" line), start the background
//     deletion of wiped files if any (rfs-init gc, nice 19, idle I/O,
//     log in /run/rfs/gc.log) and exec rfs.init
//  9. any failure: "rfs: ERROR: ..." lines (what failed, what was looked
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
//	rfs.upper=data | rfs.upper=tmpfs | rfs.upper=tmpfs:size=N
//	    The writable upper layer. data: on the data partition (rfs.data),
//	    persistent. tmpfs: every boot starts from the factory state (the
//	    data partition, if given, still holds the volumes). N is a tmpfs
//	    size: a number of bytes with an optional k/m/g suffix (K/M/G
//	    accepted) or a percentage of RAM (default 50%; also used by a
//	    degraded data boot). Default tmpfs. rfs.upper=data:PARTUUID=<id> is
//	    short for rfs.upper=data rfs.data=PARTUUID=<id>. Unknown modes, and
//	    anything else after tmpfs: (another mount option, a size that
//	    overflows 64 bits, nothing after the colon), log a warning and use
//	    tmpfs with the default size: the value never reaches the mount
//	    options unchecked. The builder writes rfs.upper=...; giving it
//	    again at boot overrides it (last wins), e.g. to boot clean once.
//	rfs.layers=PARTUUID=<id1>,PARTUUID=<id2>,...
//	    Squashfs layers stacked above the root, bottom to top, each with
//	    the syntax and search of rfs.root (/dev/NAME allowed). Each is
//	    mounted read-only at /run/rfs/layers/N; the overlay's lowerdir is
//	    the top layer first and /run/rfs/lower last. Unlike other
//	    parameters, an invalid value or a missing layer fails the boot
//	    (rescue shell) instead of being ignored. Empty: no layers. Whiteouts
//	    in a layer (char 0/0 devices) hide the entries below; the rfs
//	    kernels read no squashfs xattrs, so a layer has no opaque dirs
//	    (rfs commit expands them into whiteouts). Volumes are declared and
//	    seeded by the root's /etc/rfs/volumes only.
//	rfs.data=PARTUUID=<id> | rfs.data=/dev/NAME
//	    The data partition (ext4): upper/, work/, volumes/. Same syntax and
//	    search as rfs.root.
//	rfs.boot=PARTUUID=<id> | rfs.boot=/dev/NAME
//	    The boot partition (FAT), only read for the reset flag file.
//	rfs.reset | rfs.reset=all
//	    Factory reset at this boot: wipe upper/ and work/ (all: volumes/
//	    too). One-shot: do not leave it on a persistent command line, every
//	    boot with it resets. rfs.reset=0 cancels an earlier rfs.reset.
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
//	rfs.mount=TAG:/path[:ro]
//	    Mount the 9P export with virtio mount tag TAG (QEMU's virtio-9p,
//	    what rfs run --mount HOSTDIR:/path[:ro] offers as rfs0, rfs1, ...)
//	    on /path in the new root, read-only with :ro (:rw is the default),
//	    with trans=virtio,version=9p2000.L,cache=none. Repeatable: each
//	    rfs.mount is one mount (a path or tag given twice: the first
//	    wins, the second is a warning). It is mounted after the overlay and
//	    the volumes, so it covers them; a missing mount point is created
//	    in the overlay (so with a persistent upper it stays, as an empty
//	    directory, like a volume's). /path must be absolute and clean,
//	    without a colon, double quote or control character, and not /,
//	    nor under /dev, /proc, /sys, /run (the init's) or /tmp (the
//	    userland's init mounts a tmpfs there). A tag with no device (the
//	    kernel waits up to 2 s), or any other failure, is a warning and the
//	    boot goes on. status.json lists them as "host_mounts". Note that
//	    u-root's init copies /etc to a tmpfs: a mount below /etc is hidden
//	    there.
//
// Unknown rfs.* parameters and invalid values produce a
// "rfs: warning: ..." line and the default is used; they never fail the
// boot. Parameters not starting with rfs. (except root=) are ignored.
//
// # Data partition
//
// The last partition of the image (p3): ext4, label rfs-data, GPT type
// 0fc63daf-8483-4772-8e79-3d69d8477de4 (MBR 0x83), made with upper/, work/,
// volumes/ (root, 0755). The init adds what is missing and keeps:
//
//	upper/ work/            the overlay's upper and work dirs (rfs.upper=data)
//	volumes/NAME            one dir per volume
//	trash/                  wiped dirs (ID-upper, ID-work, ID-volumes) being deleted
//	rfs-state.json          datapart.State: last reset (time, trigger, all), last growth
//	rfs-reset-pending       datapart.ResetIntent: a reset decided but not yet complete
//	rfs-upper.json          datapart.UpperRecord: the build ID of the lower the upper
//	                        is used with (rfs.upper=data)
//
// The lower's build ID. After mounting the base lower the init reads
// BUILD_ID from its /etc/os-release (at most 64 KiB; missing or odd is a
// warning). With a persistent upper it compares it with rfs-upper.json:
// if they differ (a new image flashed with the data partition kept, a layer
// added) it prints "rfs: the upper on DEV was made against build X; the
// lower is now build Y", puts X in status.json ("upper": "made_against";
// Y is "lower"[0]."build_id") and records Y, written atomically. A reset
// moves the record into the trash with the upper; the boot after it writes
// a new one.
//
// Factory reset. Triggers: rfs.reset[=all] on the command line; a file
// "rfs-reset" at the root of the boot partition (content "all" = also the
// volumes; any other content = upper only), cleared by the init once the
// wipe is durable; `rfs-init reset [--all]` on the device (writes the
// intent, reboots; the init performs it); datapart.Dir.Reset on the host (rfs reset
// --now). Steps, each idempotent, so a power cut anywhere is completed by
// the next boot (old state before step 1, reset state after it):
// (1) write rfs-reset-pending (temp, fsync, rename, fsync dir) — the commit
// point; (2) rename upper, work (and with all: volumes and identity, the
// SSH host keys) and rfs-upper.json into trash/; (3) mkdir fresh upper,
// work (and volumes; the agent makes a new identity), fsync; (4) rfs-state.json, remove the intent, fsync; (5) clear the
// flag. The cost is a few renames and fsyncs whatever the file count; the
// trash is deleted in the background after switch_root (and again at the
// next boot if cut short).
//
// The clock. A device without a real-time clock boots in 1970. Once per
// boot, right after the data partition is mounted (before a reset or a
// growth records a time), the init sets the clock forward to the later of
// the image's build time (the mtime of the base lower's /etc/os-release:
// rfs gives every file the build's epoch) and the saved time (the data
// partition's rfs-clock, agentconf.ClockFile: one RFC 3339 time, at most
// 128 bytes, written by the agent; garbage or a time past 2200 is ignored
// with a warning), if the clock is earlier. It prints "rfs: clock set from
// OLD to the saved|build time NEW" and records status.json "clock"
// (ClockStatus: source saved|build|kernel, set_to, kernel, saved, build,
// error). It never sets the clock back.
//
// Volumes. The lower's /etc/rfs/volumes lists "NAME /absolute/path" per
// line (NAME: [a-z0-9_.-]+; # comments). The init bind-mounts
// volumes/NAME onto the path in the new root (creating the mount point if
// needed). A volume that does not exist yet is seeded with a copy of the
// lower's content at that path (owner, mode, times; empty if the lower has
// nothing there), built in volumes/.seed-NAME and renamed into place: a
// volume that exists was seeded completely, once; emptying it does not
// seed it again (deleting its directory does). Volumes survive a reset,
// not a reset=all. With a tmpfs upper the volumes are still bound.
//
// First-boot growth. If the data partition is the last one and at least
// 1 MiB is free after it (an image written to a larger medium), the init
// grows the table entry (GPT: new backup entries + header at the disk's
// end first, flush, then the primary, then the protective MBR; MBR: the
// entry's size, one sector), tells the kernel (BLKPG_RESIZE_PARTITION),
// and grows the mounted ext4 (EXT4_IOC_RESIZE_FS, journalled by the
// kernel). Every intermediate state boots; a torn primary GPT reads as the
// new backup; the next boot finishes what is missing.
//
// Degraded mode. Data partition not found, not ext4, not mountable
// (corrupt), fails during reset, or full (< 4 MiB or < 64 inodes free):
// the boot uses a tmpfs upper, volumes are not bound, "rfs: DEGRADED: why"
// is printed and status.json's "degraded" says why. Nothing is written to
// an unmountable partition; a mountable but full one stays mounted rw at
// /run/rfs/data so an operator can free space. No fsck, no mkfs, no reset
// without a trigger.
//
// # Files on the booted device
//
//	/run/rfs/lower        the squashfs (read-only)
//	/run/rfs/layers/N     layer N of rfs.layers (read-only), 1 = lowest
//	/run/rfs/upper        the upper layer's upper dir, bound read-only
//	                      (what changed since the factory state)
//	/run/rfs/data         the data partition (rw: volumes/, rfs-reset-pending,
//	                      the agent's identity/ and rfs-clock), its upper/ and
//	                      work/ covered by read-only binds (agentconf.DataDir)
//	/run/rfs/status.json  Status, JSON; the agent merges its status in under
//	                      "agent" (the init's writes, all before rfs.init
//	                      starts, keep that key)
//	/run/rfs/log/NAME.log the output of `rfs-init supervise /path/NAME`
//	                      (agentconf.LogDir; NAME.log.1 the previous MiB)
//	/run/rfs/bin/rfs-init the init, as helper: rfs-init status [--json],
//	                      rfs-init reset [--all] [--no-reboot],
//	                      rfs-init diff [--json] (the live system's changes,
//	                      with rfs diff's A/C/D rules)
//	/run/rfs/gc.log       the background deletion of wiped files
//
// Supervision. `rfs-init supervise PROG` (started by `rfs-init services`
// for each line of /etc/rfs/services on u-root, or from an inittab) runs
// PROG again whenever it exits: after 1 s, doubling to at most 30 s, back
// to 1 s once a run lasted a minute, printing "rfs: service NAME exited
// (STATUS); restarting in Ns". PROG's stdout and stderr go to the
// console and to /run/rfs/log/NAME.log. SIGTERM or SIGINT is forwarded to
// PROG; the supervisor exits once PROG has ended, so a shutdown is not
// held up.
//
// Status. `rfs-init status` also shows the agent's status (hostname,
// interfaces, DNS, clock, SSH) from /run/rfs/agent.json
// (agentconf.StatusFile), or else from status.json's "agent"; --json has
// it under "agent".
//
// Note: /proc/self/mountinfo shows the overlay's upperdir= and workdir= as
// /run/rfs/.upper-rw/... or /run/rfs/.data-rw/..., staging paths that are
// detached after the mount; the upper's contents are at /run/rfs/upper
// (status.json says so).
//
// The version recorded in status.json is Version, set at build time with
// -ldflags "-X github.com/rfsbuild/rfs/overlay.Version=v1.2.3".
package overlay
