#!/bin/sh
# Installs the host tools rfs and its tests use, when any is missing:
# QEMU (arm64 + x86), OVMF, squashfs-tools, e2fsprogs, mtools, dosfstools,
# fdisk/gdisk, systemd-boot-efi. Debian/Ubuntu only; uses sudo when not root.
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

if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed: get Go 1.26 or newer from https://go.dev/dl/" >&2
	exit 1
fi
[ -z "$need" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing:$need — install them with your package manager" >&2
	exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing$need"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null
