#!/bin/sh
# Boot to SSH (issue 16): from starting `rfs run` to the first `ssh true`
# that succeeds, per board under TCG (best and median of RUNS), and the
# agent's size and resident memory on the booted device (one SSH session
# open: the measuring one). The peer: dropbear, the SSH server Buildroot
# and OpenWrt images ship, measured on this host when installed
# (apt-get install dropbear-bin): binary size and an idle listener's RSS.
#
# The boots run in a private network namespace (unshare --net, loopback
# only) with rfs run's default restricted network: nothing leaves the
# machine. Images are built first, outside it (the Go module proxy).
#
# usage: bench/ssh.sh [RUNS] [BOARDS]   (defaults 3, "qemu-arm64 qemu-amd64 rpi3 rpi4")
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}
boards=${2:-qemu-arm64 qemu-amd64 rpi3 rpi4}

if [ "${RFS_BENCH_WORK:-}" = "" ]; then
	work=$(mktemp -d /tmp/rfs-ssh-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	go build -o "$work/rfs" ./cmd/rfs
	ssh-keygen -q -t ed25519 -N '' -f "$work/key"
	for b in $boards; do
		"$work/rfs" build --board "$b" --ssh-key "$work/key.pub" -o "$work/$b.img" >"$work/build-$b.log" 2>&1
	done
	RFS_BENCH_WORK=$work unshare --net "$0" "$runs" "$boards"
	exit
fi

work=$RFS_BENCH_WORK
ip link set lo up
port=2222
ssh_opts="-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o IdentitiesOnly=yes -o ConnectTimeout=2 -o LogLevel=ERROR -i $work/key -p $port"

# boot_to_ssh IMG: sets t to the seconds from rfs run to a working ssh;
# leaves QEMU up (pid in $qpid) for measuring.
boot_to_ssh() {
	s=$(date +%s.%N)
	"$work/rfs" run "$1" --forward "$port:22" </dev/null >"$work/console.log" 2>&1 &
	qpid=$!
	while ! ssh $ssh_opts root@127.0.0.1 true 2>/dev/null; do
		if ! kill -0 "$qpid" 2>/dev/null; then
			echo "rfs run exited; console:" >&2
			tail -20 "$work/console.log" >&2
			exit 1
		fi
		if [ "$(echo "$(date +%s.%N) - $s > 300" | bc)" = 1 ]; then
			echo "no ssh within 300 s" >&2
			exit 1
		fi
		sleep 0.2
	done
	t=$(printf '%.1f' "$(echo "$(date +%s.%N) - $s" | bc)")
}

stop() {
	[ -n "$qpid" ] || return 0
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=""
}

trap stop EXIT
qpid=""
printf '%-11s %8s %8s %11s %11s %14s\n' board "best s" "median s" "agent KiB" "rss KiB" "root squashfs"
for b in $boards; do
	times=""
	for i in $(seq "$runs"); do
		boot_to_ssh "$work/$b.img"
		times="$times $t"
		if [ "$i" = "$runs" ]; then
			rss=$(ssh $ssh_opts root@127.0.0.1 'grep VmRSS /proc/$(pidof rfs-agent)/status' | awk '{print $2}')
			size=$(ssh $ssh_opts root@127.0.0.1 'wc -c < /usr/libexec/rfs/rfs-agent')
		fi
		stop
	done
	sorted=$(echo "$times" | tr ' ' '\n' | grep . | sort -n)
	best=$(echo "$sorted" | head -1)
	median=$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")
	root=$(grep -o 'root squashfs [0-9.]* [KM]iB' "$work/build-$b.log" | head -1 | cut -d' ' -f3-)
	printf '%-11s %8s %8s %11s %11s %14s\n' "$b" "$best" "$median" "$((size / 1024))" "$rss" "$root"
done

if command -v dropbear >/dev/null 2>&1; then
	dropbearkey -t ed25519 -f "$work/dropbear_key" >/dev/null 2>&1
	dropbear -F -E -s -p 127.0.0.1:2299 -r "$work/dropbear_key" 2>/dev/null &
	dpid=$!
	sleep 1
	echo
	printf 'peer: dropbear %s on this host (%s, dynamically linked): binary %d KiB, idle listener RSS %s KiB\n' \
		"$(dpkg-query -W -f '${Version}' dropbear-bin 2>/dev/null || echo '?')" "$(uname -m)" \
		"$(($(wc -c <"$(command -v dropbear)") / 1024))" "$(awk '/VmRSS/ {print $2}' /proc/$dpid/status)"
	kill "$dpid"
else
	echo
	echo "peer: dropbear not installed (apt-get install dropbear-bin) — not measured"
fi
