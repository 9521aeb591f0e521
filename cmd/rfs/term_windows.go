package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// isTerminal says whether v is a console (rfs flash asks there).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	var mode uint32
	return windows.GetConsoleMode(windows.Handle(f.Fd()), &mode) == nil
}
