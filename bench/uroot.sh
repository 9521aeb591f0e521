#!/bin/sh
# u-root vs busybox userland: `rfs build` time cold (empty rfs cache and
# empty Go build cache: XDG_CACHE_HOME points at a new directory, so the
# init and the u-root binary are compiled from scratch; modules are in the
# Go module cache) and warm (best of RUNS), and the sizes: root squashfs,
# the userland binary, the image file.
#
# usage: bench/uroot.sh [RUNS] [BOARD]   (defaults 3, qemu-arm64)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}
board=${2:-qemu-arm64}
work=$(mktemp -d /tmp/rfs-uroot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/rfs" ./cmd/rfs

secs() { # secs CMD...: wall seconds of one run
	s=$(date +%s.%N); "$@" >"$work/log" 2>&1; e=$(date +%s.%N)
	printf '%.2f' "$(echo "$e - $s" | bc)"
}

printf '%-8s %9s %9s %12s %11s\n' userland "cold s" "warm s" "root KiB" "image MiB"
for u in busybox u-root; do
	cache="$work/cache-$u"
	mkdir -p "$cache"
	cold=$(XDG_CACHE_HOME="$cache" secs "$work/rfs" build --board "$board" --userland $u -o "$work/$u.img")
	warm=""
	for i in $(seq "$runs"); do
		t=$(XDG_CACHE_HOME="$cache" secs "$work/rfs" build --board "$board" --userland $u -o "$work/$u.img")
		if [ -z "$warm" ] || [ "$(echo "$t < $warm" | bc)" = 1 ]; then warm=$t; fi
	done
	# "wrote X (..., root squashfs N KiB|MiB, ...)"
	root=$(sed -n 's/.*root squashfs \([0-9.]*\) \(KiB\|MiB\).*/\1 \2/p' "$work/log" | awk '{ print ($2 == "MiB") ? $1 * 1024 : $1 }')
	img=$(( $(stat -c %s "$work/$u.img") / 1048576 ))
	printf '%-8s %9s %9s %12s %11s\n' $u "$cold" "$warm" "$root" "$img"
done
bb=$(find "$work/cache-u-root/rfs/uroot" -name 'bb-*' | head -1)
echo "u-root binary (default command set): $(( $(stat -c %s "$bb") / 1024 )) KiB"
