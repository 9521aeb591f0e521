//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// The first stop signal cancels the context with the signal as cause and
// turns any failure into "interrupted" with 128+signal; the second exits
// at once.
func TestSignalContext(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGHUP, 129}, {syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(sigName(tc.sig), func(t *testing.T) {
			var stderr bytes.Buffer
			exits := make(chan int, 1)
			ctx, stop := signalContext(context.Background(), &stderr, func(code int) { exits <- code })
			defer stop()
			if msg, code := exitStatus(ctx, errors.New("disk full")); msg != "rfs: disk full" || code != 1 {
				t.Errorf("before a signal: %q, %d", msg, code)
			}
			syscall.Kill(os.Getpid(), tc.sig)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the context was not cancelled by the signal")
			}
			err := fmt.Errorf("write root partition: %w", ctx.Err())
			if msg, code := exitStatus(ctx, err); msg != "rfs: interrupted ("+sigName(tc.sig)+")" || code != tc.code {
				t.Errorf("exitStatus = %q, %d; want interrupted, %d", msg, code, tc.code)
			}
			// A child killed by the cancellation is the interruption too.
			if msg, _ := exitStatus(ctx, &exitError{code: 3, err: errors.New("QEMU exited (signal: killed)")}); msg != "rfs: interrupted ("+sigName(tc.sig)+")" {
				t.Errorf("exitStatus of a killed child = %q", msg)
			}
			if msg, code := exitStatus(ctx, nil); msg != "" || code != 0 {
				t.Errorf("a command that finished anyway: %q, %d", msg, code)
			}
			select {
			case c := <-exits:
				t.Fatalf("exited (%d) after the first signal", c)
			default:
			}
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			select {
			case c := <-exits:
				if c != 130 {
					t.Errorf("second signal (SIGINT): exit %d, want 130", c)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no exit after the second signal")
			}
		})
	}
}
