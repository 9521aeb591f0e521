#!/bin/sh
# make bench: every comparison in one run. Each script prints its own table;
# figures go into docs/benchmarks.md by hand, with the machine they ran on.
# Needs root (loop devices, device nodes in extracted trees).
set -eu
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPUs, $(uname -sr), $(go version | cut -d' ' -f3)"
for s in bench/build.sh bench/squashfs.sh bench/flash.sh bench/ssh.sh bench/update.sh; do
	echo
	echo "######## $s"
	"$s"
done
echo
echo "######## Go benchmarks (FAT writer vs mkfs.vfat+mcopy, squashfs writer, deflate vs klauspost, ext4fs vs go-diskfs's ext4 reader, journal replay vs e2fsck -p)"
go test -run '^$' -bench . -benchtime 5x ./image/fat/ ./squashfs/ ./deflate/ ./layer/ ./ext4fs/
