//go:build darwin || freebsd || netbsd || openbsd

package main

import "golang.org/x/sys/unix"

// ioctlGetTermios reads a terminal's settings (tcgetattr).
const ioctlGetTermios = unix.TIOCGETA
