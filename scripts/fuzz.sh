#!/bin/sh
# Runs every Go fuzz target in the module for a bounded time each
# (FUZZTIME, default 10s): the readers of untrusted bytes (partition tables:
# ptable; superblocks: ext4fs/ext4sb, squashfs/sqsb; squashfs, ext4 and its journal, FAT,
# rfs.json) and the encoders. A failure leaves the
# crashing input in the package's testdata/fuzz/ for `go test` to replay.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
GO=${GO:-go}
fail=0
n=0
# Targets are found from the source (func FuzzXxx in *_test.go), which is
# much faster than compiling every package for `go test -list`.
for file in $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do
	for t in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		n=$((n + 1))
		pkg=./$(dirname "$file")
		echo "fuzz: $pkg $t ($fuzztime)"
		if ! $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "$pkg"; then
			fail=$((fail + 1))
		fi
	done
done
echo "fuzz: $n targets, $fail failed"
[ "$n" -gt 0 ] && [ "$fail" -eq 0 ]
