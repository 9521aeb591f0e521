package main

import "golang.org/x/sys/unix"

// ioctlGetTermios reads a terminal's settings (tcgetattr).
const ioctlGetTermios = unix.TCGETS
