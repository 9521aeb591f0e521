package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errInterrupted is the cause of the command context's cancellation when
// a signal stopped rfs; see signalContext.
type errInterrupted struct{ sig syscall.Signal }

func (e errInterrupted) Error() string { return "interrupted by " + sigName(e.sig) }

// exitCode is the shell's convention for a process ended by sig.
func (e errInterrupted) exitCode() int { return 128 + int(e.sig) }

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// stopSignals are the signals that stop rfs cleanly: the terminal's Ctrl-C,
// kill's default and a closed terminal.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signalContext returns a context cancelled, with an errInterrupted cause,
// by the first of stopSignals. Commands then return through their deferred
// cleanups (temp files, child processes). A second signal means the user
// will not wait: exit(now) is called with the signal's exit status. stop
// undoes it all.
func signalContext(parent context.Context, stderr io.Writer, now func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	for _, s := range stopSignals {
		// Started ignoring it (nohup, a background job of a script):
		// keep ignoring it, as Notify would not.
		if !signal.Ignored(s) {
			signal.Notify(ch, s)
		}
	}
	done := make(chan struct{})
	go func() {
		first := true
		for {
			select {
			case s := <-ch:
				e := errInterrupted{sig: s.(syscall.Signal)}
				if first {
					first = false
					cancel(e)
					continue
				}
				fmt.Fprintln(stderr, "rfs: interrupted again, exiting at once (temporary files may be left)")
				now(e.exitCode())
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// exitStatus turns a command's error into the message to print and the exit
// status. After a stop signal every failure is reported as the interruption
// it is (the wrapped "context canceled", or a child process killed by it),
// with 128+signal as the exit status.
func exitStatus(ctx context.Context, err error) (msg string, code int) {
	if err == nil {
		return "", 0
	}
	var intr errInterrupted
	if errors.As(context.Cause(ctx), &intr) {
		return "rfs: interrupted (" + sigName(intr.sig) + ")", intr.exitCode()
	}
	msg = "rfs: " + err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		return msg, ee.code
	}
	return msg, 1
}
