#!/bin/sh
# Compare rfs's squashfs writer with mksquashfs -comp gzip, both on all
# cores, on the same trees in one run:
#   busybox  the default busybox rootfs (rfs build, root partition extracted)
#   python   a copy of /usr/lib/python3.* (real files)
#   small    100,000 small files, generated deterministically
# Prints, per tree, the best-of-N wall time and the size of each image and
# their ratios (rfs / mksquashfs). Targets: time <= 1.0, size <= 1.02.
#
# usage: bench/squashfs.sh [RUNS]      (default 3; env WORK=dir keeps trees)
# Needs root for the busybox tree (device nodes), mksquashfs, unsquashfs,
# sfdisk, python3.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}
work=${WORK:-$(mktemp -d /tmp/rfs-sqbench.XXXXXX)}
mkdir -p "$work"
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
for t in mksquashfs unsquashfs sfdisk python3; do
	command -v $t >/dev/null || { echo "bench/squashfs.sh: $t not installed" >&2; exit 1; }
done

go build -o "$work/rfs" ./cmd/rfs

# (a) busybox rootfs: build the default image, extract its root squashfs.
if [ ! -d "$work/busybox" ]; then
	(cd "$work" && ./rfs build -o "$work/bb.img" >/dev/null 2>&1) ||
		go run ./cmd/rfs build -o "$work/bb.img" >/dev/null
	set -- $(sfdisk -d "$work/bb.img" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\),.*name="rfs-root".*/\1 \2/p')
	dd if="$work/bb.img" of="$work/bb.sqfs" bs=512 skip="$1" count="$2" status=none
	unsquashfs -q -n -d "$work/busybox" "$work/bb.sqfs" >/dev/null
	rm -f "$work/bb.img" "$work/bb.sqfs"
fi

# (b) real files.
if [ ! -d "$work/python" ]; then
	py=$(ls -d /usr/lib/python3.* | head -1)
	cp -a "$py" "$work/python"
fi

# (c) 100k small files: 100 dirs x 1000 files, 0..6000 bytes of
# pseudo-text, seeded.
if [ ! -d "$work/small" ]; then
	python3 - "$work/small" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(42)
words = [''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(r.randint(2, 9))) for _ in range(2000)]
for d in range(100):
    dp = os.path.join(root, 'd%03d' % d)
    os.makedirs(dp)
    for f in range(1000):
        n = int(r.expovariate(1 / 1500)) % 6000
        text = []
        size = 0
        while size < n:
            w = r.choice(words)
            text.append(w)
            size += len(w) + 1
        with open(os.path.join(dp, 'f%04d.txt' % f), 'w') as fh:
            fh.write(' '.join(text)[:n])
        os.utime(os.path.join(dp, 'f%04d.txt' % f), (1700000000, 1700000000))
EOF
fi

# wall time of a command, in seconds
walltime() {
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	python3 -c "print($e-$s)"
}

# best of RUNS wall times of rfs (ours) and mksquashfs (theirs) on $dir,
# alternating the two so that both see the same load on a shared machine.
best2() {
	ours= theirs=
	for _ in $(seq "$runs"); do
		ot=$(walltime "$work/rfs" squashfs "$dir" -o "$work/rfs.sqfs" "$@")
		tt=$(walltime mksquashfs "$dir" "$work/ms.sqfs" -comp gzip -noappend -no-xattrs -quiet -no-progress)
		ours=$(python3 -c "print(min($ot, ${ours:-$ot}))")
		theirs=$(python3 -c "print(min($tt, ${theirs:-$tt}))")
	done
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)"
echo "$(mksquashfs -version 2>&1 | head -1); rfs $(git rev-parse --short HEAD 2>/dev/null || echo '?'); best of $runs alternating runs"
printf '%-8s %7s %6s | %9s %9s %6s | %11s %11s %6s\n' tree entries MB rfs-s mksq-s time rfs-bytes mksq-bytes size
for t in busybox python small; do
	dir=$work/$t
	cat $(find "$dir" -type f) >/dev/null 2>&1 || true # warm the page cache
	entries=$(find "$dir" | wc -l)
	mb=$(du -sm "$dir" | cut -f1)
	best2
	rs=$(stat -c %s "$work/rfs.sqfs")
	ms=$(stat -c %s "$work/ms.sqfs")
	printf '%-8s %7d %6d | %9.3f %9.3f %6.3f | %11d %11d %6.4f\n' "$t" "$entries" "$mb" "$ours" "$theirs" \
		"$(python3 -c "print($ours/$theirs)")" "$rs" "$ms" "$(python3 -c "print($rs/$ms)")"
	if [ "${SMALLEST:-}" = 1 ]; then
		best2 --smallest
		rs=$(stat -c %s "$work/rfs.sqfs")
		printf '%-8s %7s %6s | %9.3f %9.3f %6.3f | %11d %11d %6.4f\n' "  -small" "" "" "$ours" "$theirs" \
			"$(python3 -c "print($ours/$theirs)")" "$rs" "$ms" "$(python3 -c "print($rs/$ms)")"
	fi
done
