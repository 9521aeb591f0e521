#!/bin/sh
# Compare `rfs flash` (verification on, and --no-verify) with
# `dd bs=4M conv=fsync` and `bmaptool copy` writing the same sparse image to
# the same loop device, in two device models:
#   fast: the loop device as it is, over a sparse file on the VM's disk
#         (writes and reads at page-cache / virtio speed, ~1 GB/s);
#   card: the same loop device throttled like an SD card with cgroup v1
#         blk-throttle on the root cgroup: CARD_WRITE_MBS (default 20) MB/s
#         written, CARD_READ_MBS (default 80) MB/s read — a typical class-10
#         / A1 (UHS-I) card in a USB 3 reader: class 10 and A1 guarantee
#         >= 10 MB/s sequential writes, such cards write ~15-30 MB/s and read
#         ~80-90 MB/s. blk-throttle charges bytes only: no per-command cost,
#         no erase-block effects, and reads and writes are throttled
#         independently (a real card does one or the other at a time).
# usage: bench/flash.sh [DATA_MB] [IMAGE_GB]   (default 100 MB of data in a 2 GiB image)
# env: RUNS (best of, default 3), MODELS (default "fast card"),
#      CARD_WRITE_MBS, CARD_READ_MBS, DD_CARD_RUNS (default 1: dd takes
#      ~2 GiB / 20 MB/s = ~107 s per run in the card model).
# Needs root (losetup, drop_caches, blkio). Installs bmap-tools with apt-get
# when missing. The throttle is always removed on exit.
set -eu
cd "$(dirname "$0")/.."
data_mb=${1:-100}
size_gb=${2:-2}
runs=${RUNS:-3}
models=${MODELS:-fast card}
card_w=${CARD_WRITE_MBS:-20}
card_r=${CARD_READ_MBS:-80}
dd_card_runs=${DD_CARD_RUNS:-1}
if [ "$(id -u)" != 0 ]; then echo "bench/flash.sh: needs root (loop devices); skipped"; exit 0; fi
if ! command -v bmaptool >/dev/null; then
	apt-get install -y bmap-tools >/dev/null 2>&1 || { echo "bench/flash.sh: cannot install bmap-tools"; exit 1; }
fi
blkio=/sys/fs/cgroup/blkio
work=$(mktemp -d "${TMPDIR:-/tmp}/rfs-flash-bench.XXXXXX")
dev=
mm=
throttled=
unthrottle() {
	[ -n "$throttled" ] || return 0
	echo "$mm 0" 2>/dev/null >"$blkio/blkio.throttle.write_bps_device" || true
	echo "$mm 0" 2>/dev/null >"$blkio/blkio.throttle.read_bps_device" || true
	throttled=
}
cleanup() {
	unthrottle
	[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go build -o "$work/rfs" ./cmd/rfs

# A 2 GiB GPT image: a 1 GiB partition with ~100 MB of random data spread
# over 10 extents, a second partition with a little data; the rest holes.
img=$work/bench.img
truncate -s "${size_gb}G" "$img"
sgdisk -n 1:1M:+1G -t 1:8300 -n 2:0:0 -t 2:8300 "$img" >/dev/null # (sgdisk 1.0.9 -q writes nothing)
chunk=$((data_mb / 10))
i=0
while [ $i -lt 10 ]; do
	dd if=/dev/urandom of="$img" bs=1M seek=$((1 + i * 100)) count=$chunk conv=notrunc status=none
	i=$((i + 1))
done
dd if=/dev/urandom of="$img" bs=1M seek=1100 count=1 conv=notrunc status=none
sgdisk -v "$img" | grep -q "No problems found" || { echo "bench/flash.sh: the image has no valid GPT"; exit 1; }
bmaptool -q create -o "$work/bench.bmap" "$img"
mapped=$(sed -n 's:.*<MappedBlocksCount> *\([0-9]*\) *</MappedBlocksCount>.*:\1:p' "$work/bench.bmap")
bsize=$(sed -n 's:.*<BlockSize> *\([0-9]*\) *</BlockSize>.*:\1:p' "$work/bench.bmap")
echo "image: $(du -h --apparent-size "$img" | cut -f1) apparent, $(du -h "$img" | cut -f1) allocated; bmap: $(echo "$mapped * $bsize / 1048576" | bc -l | xargs printf '%.1f') MiB mapped"

# The target: a loop device over a (sparse, zero) file on the same
# filesystem, 64 MiB larger than the image. rfs runs first, so the cmp
# below checks it wrote the image exactly.
truncate -s "$((size_gb * 1024 + 64))M" "$work/target"
dev=$(losetup --find --show "$work/target")
mm=$(lsblk -dno MAJ:MIN "$dev" | tr -d ' ')
echo "target: $dev ($mm, $(blockdev --getsize64 "$dev") bytes), $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

t() { # seconds taken by "$@", caches dropped first; stderr in $work/err
	sync; echo 3 >/proc/sys/vm/drop_caches
	s=$(date +%s.%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; e=$(date +%s.%N)
	echo "$e - $s" | bc
}
best() { # best of $n runs; the stderr of the best in $work/best.err
	n=$1; shift
	b=
	for _ in $(seq "$n"); do
		x=$(t "$@")
		if [ -z "$b" ] || [ "$(echo "$x < $b" | bc)" = 1 ]; then b=$x; cp "$work/err" "$work/best.err"; fi
	done
	echo "$b"
}
phase() { # the duration rfs printed for phase $1 (wrote|verified) in $work/best.err
	sed -n "s/^rfs: $1 .* in \([0-9.]*m\{0,1\}s\) .*/\1/p" "$work/best.err"
}
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }

run_model() { # $1: model name; $2: dd runs
	rfs=$(best "$runs" "$work/rfs" flash "$img" "$dev" --force --yes)
	planned=$(sed -n 's/^rfs: writing .*: \(.*\) in \([0-9]*\) ranges.*/\1 in \2 ranges/p' "$work/best.err")
	wr=$(phase wrote) ver=$(phase verified)
	if [ "$1" = fast ]; then
		cmp -n "$(stat -c %s "$img")" "$img" "$dev" >/dev/null || { echo "rfs flash: the device differs from the image"; exit 1; }
	fi
	nov=$(best "$runs" "$work/rfs" flash "$img" "$dev" --force --yes --no-verify)
	nwr=$(phase wrote)
	dd=$(best "$2" dd if="$img" of="$dev" bs=4M conv=fsync status=none)
	bmap=$(best "$runs" bmaptool -q copy --bmap "$work/bench.bmap" "$img" "$dev")
	echo
	echo "model $1: rfs planned $planned; best of $runs (dd: of $2); load $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '  %-32s %8.3f s   (write %s, verify %s)\n' "rfs flash (verify on)" "$rfs" "$wr" "$ver"
	printf '  %-32s %8.3f s   (write %s)\n' "rfs flash --no-verify" "$nov" "$nwr"
	printf '  %-32s %8.3f s\n' "dd bs=4M conv=fsync" "$dd" "bmaptool copy (checksums on)" "$bmap"
	echo "  rfs/dd                = $(ratio "$rfs" "$dd")  (target <= 0.1)"
	echo "  rfs/bmaptool          = $(ratio "$rfs" "$bmap")  (target <= 1.0)"
	echo "  rfs --no-verify/bmaptool = $(ratio "$nov" "$bmap")"
}

for model in $models; do
	case $model in
	fast)
		run_model fast "$runs"
		;;
	card)
		if [ ! -w "$blkio/blkio.throttle.write_bps_device" ] || [ ! -w "$blkio/blkio.throttle.read_bps_device" ]; then
			echo
			echo "model card: skipped: no cgroup v1 blkio throttle ($blkio/blkio.throttle.*_bps_device)"
			continue
		fi
		throttled=1
		echo "$mm $((card_w * 1000000))" >"$blkio/blkio.throttle.write_bps_device"
		echo "$mm $((card_r * 1000000))" >"$blkio/blkio.throttle.read_bps_device"
		grep -q "^$mm $((card_w * 1000000))\$" "$blkio/blkio.throttle.write_bps_device" || { echo "bench/flash.sh: the write throttle did not take"; exit 1; }
		echo
		echo "model card: $dev throttled to $card_w MB/s write, $card_r MB/s read (root blkio cgroup)"
		run_model card "$dd_card_runs"
		unthrottle
		;;
	*) echo "bench/flash.sh: unknown model $model (fast, card)"; exit 1 ;;
	esac
done
