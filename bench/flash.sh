#!/bin/sh
# Compare `rfs flash` (verification on) with `dd bs=4M conv=fsync` and
# `bmaptool copy` writing the same sparse image to the same loop device.
# usage: bench/flash.sh [DATA_MB] [IMAGE_GB]   (default 100 MB of data in a 2 GiB image)
# Needs root (losetup). Installs bmap-tools with apt-get when missing.
set -eu
cd "$(dirname "$0")/.."
data_mb=${1:-100}
size_gb=${2:-2}
if [ "$(id -u)" != 0 ]; then echo "bench/flash.sh: needs root (loop devices); skipped"; exit 0; fi
if ! command -v bmaptool >/dev/null; then
	apt-get install -y bmap-tools >/dev/null 2>&1 || { echo "bench/flash.sh: cannot install bmap-tools"; exit 1; }
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rfs-flash-bench.XXXXXX")
dev=
cleanup() { [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM
go build -o "$work/rfs" ./cmd/rfs

# A 2 GiB GPT image: a 1 GiB partition with ~100 MB of random data spread
# over 10 extents, a second partition with a little data; the rest holes.
img=$work/bench.img
truncate -s "${size_gb}G" "$img"
sgdisk -q -n 1:1M:+1G -t 1:8300 -n 2:0:0 -t 2:8300 "$img"
chunk=$((data_mb / 10))
i=0
while [ $i -lt 10 ]; do
	dd if=/dev/urandom of="$img" bs=1M seek=$((1 + i * 100)) count=$chunk conv=notrunc status=none
	i=$((i + 1))
done
dd if=/dev/urandom of="$img" bs=1M seek=1100 count=1 conv=notrunc status=none
bmaptool -q create -o "$work/bench.bmap" "$img"
echo "image: $(du -h --apparent-size "$img" | cut -f1) apparent, $(du -h "$img" | cut -f1) allocated"

# The target: a loop device over a (sparse, zero) file on the same
# filesystem, 64 MiB larger than the image. rfs runs first, so the cmp
# below checks it wrote the image exactly.
truncate -s "$((size_gb * 1024 + 64))M" "$work/target"
dev=$(losetup --find --show "$work/target")
echo "target: $dev ($(blockdev --getsize64 "$dev") bytes, $(nproc) CPUs, $(uname -r))"

t() { # seconds taken by "$@", caches dropped first
	sync; echo 3 >/proc/sys/vm/drop_caches
	s=$(date +%s.%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; e=$(date +%s.%N)
	echo "$e - $s" | bc
}
runs=${RUNS:-3}
best() { # best of $runs
	b=
	for _ in $(seq "$runs"); do
		x=$(t "$@")
		if [ -z "$b" ] || [ "$(echo "$x < $b" | bc)" = 1 ]; then b=$x; fi
	done
	echo "$b"
}
rfs=$(best "$work/rfs" flash "$img" "$dev" --force --yes)
cmp -n "$(stat -c %s "$img")" "$img" "$dev" >/dev/null || { echo "rfs flash: the device differs from the image"; }
dd=$(best dd if="$img" of="$dev" bs=4M conv=fsync status=none)
bmap=$(best bmaptool -q copy --bmap "$work/bench.bmap" "$img" "$dev")
printf '%-34s %8s s\n' "rfs flash (verify on)" "$rfs" "dd bs=4M conv=fsync" "$dd" "bmaptool copy (checksums on)" "$bmap"
printf 'rfs/dd       = %.3f  (target <= 0.1)\n' "$(echo "$rfs / $dd" | bc -l)"
printf 'rfs/bmaptool = %.3f  (target <= 1.0)\n' "$(echo "$rfs / $bmap" | bc -l)"
