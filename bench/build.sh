#!/bin/sh
# Image assembly: warm `rfs build` per board (time and size), and for rpi4
# the same partitions assembled by genimage (Debian package) from the same
# inputs, in the same run, as a ratio.
#
# genimage gets exactly what rfs put in the image: the boot partition's
# files (kernel, firmware, DTBs, overlays/, config.txt, cmdline.txt,
# initramfs) and the root tree (extracted from rfs's squashfs), and builds
# FAT (mkdosfs + mcopy), squashfs (mksquashfs -comp gzip), the empty ext4
# data partition (mke2fs) and the MBR disk.
#
# usage: bench/build.sh [RUNS]   (default 5; needs root to extract device nodes)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-5}
work=$(mktemp -d /tmp/rfs-buildbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v genimage >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq genimage >/dev/null; }
for t in genimage mksquashfs unsquashfs mcopy mkdosfs sfdisk; do
	command -v $t >/dev/null || { echo "bench/build.sh: $t not installed" >&2; exit 1; }
done
go build -o "$work/rfs" ./cmd/rfs

# best RUNS CMD...: best wall time in seconds of RUNS runs.
best() {
	n=$1; shift
	b=""
	for i in $(seq "$n"); do
		s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	printf '%.3f' "$b"
}

echo "== rfs build, warm (best of $runs)"
printf '%-12s %8s %10s %12s\n' board seconds "image MiB" "on-disk MiB"
for b in qemu-arm64 qemu-amd64 rpi3 rpi4 rpi5 rpi; do
	"$work/rfs" build -q --board $b -o "$work/$b.img" >/dev/null # warm the caches
	t=$(best "$runs" "$work/rfs" build -q --board $b -o "$work/$b.img")
	printf '%-12s %8s %10d %12d\n' $b "$t" $(( $(stat -c %s "$work/$b.img") >> 20 )) $(( $(du -k "$work/$b.img" | cut -f1) >> 10 ))
done

# Same inputs for genimage, taken from the rfs image.
img="$work/rpi4.img"
mkdir -p "$work/in/boot" "$work/root" "$work/tmp" "$work/out"
set -- $(sfdisk -d "$img" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\), type=c.*/\1 \2/p')
dd if="$img" of="$work/boot.fat" bs=512 skip="$1" count="$2" status=none
bootmib=$(( $2 / 2048 ))
mcopy -s -i "$work/boot.fat" '::*' "$work/in/boot/"
rm -f "$work/in/boot/rfs.json"
set -- $(sfdisk -d "$img" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\), type=83.*/\1 \2/p')
dd if="$img" of="$work/root.sqfs" bs=512 skip="$1" count="$2" status=none
rootmib=$(( $2 / 2048 ))
rm -rf "$work/root"; unsquashfs -q -n -d "$work/root" "$work/root.sqfs" >/dev/null
files=$(cd "$work/in/boot" && ls | sed 's/.*/"&",/' | tr '\n' ' ' | sed 's/, $//')
cat > "$work/genimage.cfg" <<CFG
image boot.vfat {
	vfat { files = { $files } label = "RFS-BOOT" }
	size = ${bootmib}M
}
image root.squashfs {
	squashfs { compression = "gzip" block-size = 131072 }
}
image data.ext4 {
	ext4 { label = "rfs-data" use-mke2fs = true }
	size = 64M
}
image sdcard.img {
	size = $(stat -c %s "$img")
	hdimage { partition-table-type = "mbr" fill = true }
	partition boot { partition-type = 0xC bootable = true image = "boot.vfat" offset = 1M }
	partition root { partition-type = 0x83 image = "root.squashfs" align = 1M size = ${rootmib}M }
	partition data { partition-type = 0x83 image = "data.ext4" align = 1M }
}
CFG
gen() {
	rm -rf "$work/tmp" "$work/out"
	genimage --config "$work/genimage.cfg" --rootpath "$work/root" --inputpath "$work/in/boot" \
		--outputpath "$work/out" --tmppath "$work/tmp"
}
gen >/dev/null 2>&1 || { gen; exit 1; }
tr=$(best "$runs" "$work/rfs" build -q --board rpi4 -o "$work/rpi4.img")
tg=$(best "$runs" gen)
echo
echo "== rpi4 image assembly, same inputs (best of $runs)"
printf 'rfs build --board rpi4  %ss  (%d MiB)\n' "$tr" $(( $(stat -c %s "$img") >> 20 ))
printf 'genimage                %ss  (%d MiB)\n' "$tg" $(( $(stat -c %s "$work/out/sdcard.img") >> 20 ))
printf 'ratio rfs/genimage      %.2f  (target <= 0.5, and rfs under 2 s)\n' "$(echo "$tr / $tg" | bc -l)"
