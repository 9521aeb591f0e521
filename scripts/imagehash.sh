#!/bin/sh
# Builds a fixed set of image variants with the rfs binary given and prints
# each one's sha256: run it before and after a change that must not move a
# byte (refactors), and compare the two outputs.
#   scripts/imagehash.sh [RFS] > hashes.txt
# PARTS=1 also prints each partition's sha256 and each boot file's, so a
# difference can be pinned down (diff the outputs).
# A change to the init's code changes its binary and so every image. To
# check that nothing else moved, give the old init binaries (rfs-init-arm64,
# rfs-init-amd64, from the rfs cache dir's init/KEY/) in BASE_INIT=DIR: they
# are put in a private cache under the new rfs's key before the builds.
set -eu
rfs=${1:-rfs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1767225600

case $rfs in */*) rfs=$(realpath "$rfs") ;; *) rfs=$(command -v "$rfs") ;; esac
cd "$work" # rfs.json records layer files as given: keep the names relative
mkdir -p "$work/files/etc/app" "$work/l1/opt" "$work/l2/opt"
echo hello >"$work/files/etc/app/greeting"
echo one >"$work/l1/opt/one"
echo two >"$work/l2/opt/two"
if [ -n "${BASE_INIT:-}" ]; then
	export XDG_CACHE_HOME="$work/cache"
	for board in qemu-arm64 qemu-amd64; do
		"$rfs" build -q -o "$work/warm.img" --board $board >/dev/null
	done
	rm -f "$work/warm.img"
	for f in "$XDG_CACHE_HOME"/rfs/init/*/rfs-init-*; do
		cp "$BASE_INIT/${f##*/}" "$f"
	done
fi
"$rfs" squashfs --all-root --all-time 1767225600 "$work/l1" -o "$work/l1.sqfs" >/dev/null
"$rfs" squashfs --all-root --all-time 1767225600 "$work/l2" -o "$work/l2.sqfs" >/dev/null

parts() { # image, name: a line per partition, and per file of the first (the boot FAT)
	sfdisk --json "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p["type"] not in ("5", "f", "85"):
        print(p["node"][len(sys.argv[1]):], p["start"], p["size"])' "$1" |
	while read -r n start size; do
		h=$(dd if="$1" bs=512 skip="$start" count="$size" status=none | sha256sum | cut -c1-64)
		printf '%s %s part%s\n' "$h" "$2" "$n"
		if [ "$n" = 1 ]; then
			mdir -i "$1@@$((start * 512))" -/ -b :: | sort | while read -r f; do
				case $f in */) continue ;; esac
				h=$(mtype -i "$1@@$((start * 512))" "$f" 2>/dev/null | sha256sum | cut -c1-64) || true
				printf '%s %s %s\n' "$h" "$2" "${f#::}"
			done
		fi
	done
}

build() { # name, flags...
	name=$1
	shift
	"$rfs" build -q -o "$work/$name.img" "$@" >/dev/null
	printf '%s %s\n' "$(sha256sum <"$work/$name.img" | cut -c1-64)" "$name"
	[ -z "${PARTS:-}" ] || parts "$work/$name.img" "$name"
	rm -f "$work/$name.img"
}
build qemu-arm64 --board qemu-arm64
build qemu-amd64 --board qemu-amd64
build pc --board pc
build rpi --board rpi
build rpi4-tmpfs --board rpi4 --upper tmpfs:size=64M --size 512M
build uroot --board qemu-arm64 --userland u-root
build files --board qemu-arm64 --files files --volume /var/lib/app --hostname kiosk --cmdline quiet --login
build layer --board qemu-arm64 --layer l1.sqfs
build rpi4-layers --board rpi4 --layer l1.sqfs --layer l2.sqfs
build pc-layers --board pc --layer l1.sqfs --layer l2.sqfs --data-size 32M
