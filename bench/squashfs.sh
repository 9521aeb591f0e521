#!/bin/sh
# Compare rfs's squashfs writer with mksquashfs -comp gzip on a host tree.
# usage: bench/squashfs.sh [DIR]   (default /usr/lib/python3.*)
set -eu
cd "$(dirname "$0")/.."
dir=${1:-$(ls -d /usr/lib/python3.* | head -1)}
echo "tree: $dir ($(du -sh "$dir" | cut -f1), $(find "$dir" | wc -l) entries)"
RFS_SQUASHFS_BENCH_DIR=$dir go test -run '^$' -bench BenchmarkWrite -benchtime 3x ./squashfs/
