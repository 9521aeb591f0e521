// Command rfs-init is the init (PID 1) of the rfs initramfs: it mounts the
// squashfs root with an overlayfs upper and switches root into it. All the
// logic is in package github.com/rfsbuild/rfs/overlay, which documents the
// kernel command line contract.
//
// Not as PID 1, the same binary is the on-device helper (the init installs
// a copy at /run/rfs/bin/rfs-init): rfs-init status [--json],
// rfs-init reset [--all] [--no-reboot], rfs-init diff [--json], and
// rfs-init supervise /path/PROG (restart PROG with back-off, log to the
// console and /run/rfs/log/PROG.log).
//
// Build (as rfs does):
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath \
//	  -ldflags='-s -w -X github.com/rfsbuild/rfs/overlay.Version=v1.2.3' ./cmd/rfs-init
package main

import (
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs/overlay"
)

func main() {
	if os.Getpid() != 1 && filepath.Base(os.Args[0]) == "uinit" {
		// u-root's init runs /bbin/uinit (a link to this binary) instead of
		// its shell: start the services u-root cannot restart, then the shell.
		os.Exit(overlay.UInit(os.Stdout, os.Stderr))
	}
	if os.Getpid() != 1 && overlay.IsHelperCommand(os.Args[1:]) {
		// On the booted device: /run/rfs/bin/rfs-init status|reset.
		os.Exit(overlay.Helper(os.Args[1:], os.Stdout, os.Stderr))
	}
	if os.Getpid() != 1 && os.Getenv("RFS_INIT_FORCE") != "1" {
		os.Stderr.WriteString("rfs-init: this is the initramfs init and must run as PID 1; it mounts over / and deletes the initramfs (RFS_INIT_FORCE=1 overrides)\n")
		os.Stderr.WriteString(overlay.HelperUsage)
		os.Exit(2)
	}
	overlay.NewBoot("/", os.Stdout).Run() // never returns
}
