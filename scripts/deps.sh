#!/bin/sh
# Installs the host tools rfs and its tests use, when any is missing:
# QEMU (arm64 + x86), OVMF, squashfs-tools, e2fsprogs, mtools, dosfstools,
# fdisk/gdisk, systemd-boot-efi. Debian/Ubuntu only; uses sudo when not root.
# QEMU must have the raspi4b machine (QEMU 9.0 or newer): on Debian 12
# bookworm, whose QEMU is 7.2, QEMU alone comes from bookworm-backports.
set -eu

need=""
check() { # command package
	command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || need="$need $2"
}
check qemu-system-aarch64 qemu-system-arm
check qemu-system-x86_64 qemu-system-x86
check /usr/share/OVMF/OVMF_CODE.fd ovmf
check mksquashfs squashfs-tools
check e2fsck e2fsprogs
check mcopy mtools
check fsck.vfat dosfstools
check sfdisk fdisk
check sgdisk gdisk
check /usr/lib/systemd/boot/efi/linuxx64.efi.stub systemd-boot-efi
# The network tests log in with OpenSSH's clients; bench/ssh.sh needs bc.
check ssh-keygen openssh-client
check bc bc
# The update tests push to and pull from a real registry on 127.0.0.1.
check docker-registry docker-registry

if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed: get Go 1.26 or newer from https://go.dev/dl/" >&2
	exit 1
fi

# raspi4b: whether the installed QEMU has the Raspberry Pi 4 machine.
raspi4b() {
	qemu-system-aarch64 -machine help 2>/dev/null | grep -q '^raspi4b[[:space:]]'
}
[ -z "$need" ] && raspi4b && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	[ -z "$need" ] || echo "deps: missing:$need — install them with your package manager" >&2
	raspi4b || echo "deps: warning: QEMU has no raspi4b machine: Raspberry Pi 4 boots need QEMU 9.0 or newer" >&2
	[ -z "$need" ] || exit 1
	exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
if [ -n "$need" ]; then
	echo "deps: installing$need"
	apt update -qq
	apt install -y -qq --no-install-recommends $need >/dev/null
	# The package starts a registry on :5000 for the whole network; the
	# tests start their own on 127.0.0.1.
	case "$need" in *docker-registry*)
		$sudo systemctl disable --now docker-registry >/dev/null 2>&1 || $sudo service docker-registry stop >/dev/null 2>&1 || true ;;
	esac
fi
raspi4b && exit 0

# bookworm_mirror prints the URI apt fetches Debian bookworm's main suite
# from (one-line or deb822 sources), for its backports beside it.
bookworm_mirror() {
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" { sub(/\[[^]]*\]/, ""); if ($3 == "bookworm") print $2 }'
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v RS= '{
			u = ""; s = 0; n = split($0, l, "\n")
			for (i = 1; i <= n; i++) {
				if (l[i] ~ /^URIs:/) { split(l[i], a, /[ \t]+/); u = a[2] }
				if (l[i] ~ /^Suites:/ && (l[i] " ") ~ /[ \t]bookworm[ \t]/) s = 1
			}
			if (s && u != "") print u
		}'
	} | head -n1
}

# QEMU's machines come with its version: bookworm's 7.2 has no raspi4b,
# bookworm-backports has 10.0. Only QEMU is taken from there (-t for
# this one install; qemu-system-x86 follows, as both need the same
# qemu-system-common); nothing else is upgraded or pinned.
VERSION_CODENAME=""
[ ! -r /etc/os-release ] || . /etc/os-release
if [ "$VERSION_CODENAME" != bookworm ]; then
	# Everything else works: rfs run says how to boot a Pi 4 image as a
	# Pi 3, and the Pi 4 boot tests skip.
	echo "deps: warning: QEMU has no raspi4b machine: Raspberry Pi 4 boots (rfs run, the e2e tests) need QEMU 9.0 or newer, e.g. from Debian 13 or Ubuntu 24.10" >&2
	exit 0
fi
if ! cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -q '^[^#]*bookworm-backports'; then
	mirror=$(bookworm_mirror)
	if [ -z "$mirror" ]; then
		echo "deps: QEMU has no raspi4b machine, and no apt source for bookworm to add bookworm-backports beside: add bookworm-backports to apt's sources, then run this again" >&2
		exit 1
	fi
	echo "deps: adding bookworm-backports ($mirror) to apt's sources for QEMU 10"
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" |
		$sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi
echo "deps: installing qemu-system-arm from bookworm-backports (raspi4b)"
apt update -qq
apt install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null
raspi4b || { echo "deps: qemu-system-aarch64 still has no raspi4b machine" >&2; exit 1; }
