#!/bin/bash
# Bytes on the wire of a field update that changes the root only (v1 to
# v2 of a qemu-arm64 image: a file added, a file changed), measured by the
# e2e test TestUpdate through a counting proxy between the device (QEMU)
# and a docker-registry on 127.0.0.1 (in a private network namespace),
# against what the other ways move for the same change: the root alone
# (Mender/RAUC rootfs artifacts), kernel + initramfs + root (gokrazy
# writes the boot and root partitions), and a reflash of the image.
set -euo pipefail
cd "$(dirname "$0")/.."
line=$(go test -count=1 -run 'TestUpdate$' -v -timeout 20m ./e2e/ 2>&1 | grep -o 'update bytes: .*' | tail -1)
[ -n "$line" ] || { echo "update.sh: TestUpdate printed no update bytes (root and QEMU needed)" >&2; exit 1; }
echo "$line"
# (a here-string ends in a newline: read returns 0)
read -r rfs root gok img <<<"$(echo "$line" | grep -o '[0-9]\{4,\}' | tr '\n' ' ')"
awk -v r="$rfs" -v a="$root" -v g="$gok" -v i="$img" 'BEGIN {
	printf "%-46s %12s %8s\n", "update (root changed)", "bytes", "vs rfs"
	printf "%-46s %12d %8s\n", "rfs (registry, parts the device has skipped)", r, "1.0x"
	printf "%-46s %12d %7.1fx\n", "root only (Mender, RAUC rootfs)", a, a/r
	printf "%-46s %12d %7.1fx\n", "kernel+initramfs+root (gokrazy)", g, g/r
	printf "%-46s %12d %7.1fx\n", "reflash the image", i, i/r
}'
