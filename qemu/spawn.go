package qemu

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// process is one QEMU of a run: a run of an image with A/B slots starts
// one per boot.
type process struct {
	cmd *exec.Cmd
	// stdin and stdout are the console's pipes (nil when QEMU has the
	// terminal); childEnds are QEMU's ends, closed here once it started.
	stdin, stdout *os.File
	childEnds     []*os.File
	exited        chan struct{} // closed once QEMU has been waited for
	err           error         // its exit, once exited is closed
	reason        <-chan string // the SHUTDOWN event's reason; nil without QMP
	removeSocket  func()
}

// attachFunc connects a QEMU's stdio before it starts.
type attachFunc func(cmd *exec.Cmd, p *process) error

// pipes gives QEMU's console to the caller as two pipes, stderr with
// stdout. They are files, not exec's pipes, so that Wait (called as soon
// as QEMU exits, to know it has) does not close what is still to be read.
func pipes(cmd *exec.Cmd, p *process) error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
	// Its console is ours, not the terminal's: in its own process group
	// the terminal's Ctrl-C reaches only rfs, which stops QEMU and says
	// "interrupted", not "QEMU exited (signal: interrupt)".
	ownGroup(cmd)
	p.stdin, p.stdout, p.childEnds = inW, outR, []*os.File{inR, outW}
	return nil
}

// terminal gives QEMU the terminal's streams.
func terminal(stdin io.Reader, stdout, stderr io.Writer) attachFunc {
	return func(cmd *exec.Cmd, _ *process) error {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		return nil
	}
}

// spawn starts QEMU for c. With c.Firmware it also listens on QMP (the
// guest starts paused and runs once rfs listens), to learn why QEMU
// stops.
func spawn(ctx context.Context, c Config, attach attachFunc) (*process, error) {
	p := &process{exited: make(chan struct{}), removeSocket: func() {}}
	if c.Firmware != nil {
		sock, rm, err := qmpSocket(filepath.Dir(c.Kernel))
		if err != nil {
			return nil, fmt.Errorf("QMP socket: %w", err)
		}
		c.qmp, p.removeSocket = sock, rm
	}
	p.cmd = c.Command(ctx)
	if err := attach(p.cmd, p); err != nil {
		p.removeSocket()
		return nil, err
	}
	wait, err := startLocked(p.cmd)
	closeAll(p.childEnds) // QEMU has its copies: EOF once it is gone
	if err != nil {
		p.removeSocket()
		closeAll([]*os.File{p.stdin, p.stdout})
		return nil, fmt.Errorf("start %s: %w", c.QEMU.Binary, err)
	}
	go func() {
		p.err = wait()
		close(p.exited)
	}()
	if c.qmp != "" {
		if p.reason, err = qmpWatch(c.qmp, p.exited); err != nil {
			p.kill()
			p.finish()
			closeAll([]*os.File{p.stdin, p.stdout})
			return nil, fmt.Errorf("%s: %w", c.QEMU.Binary, err)
		}
	}
	return p, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// kill stops QEMU at once.
func (p *process) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
}

// qmpGrace is how long the QMP connection may outlive QEMU: its last
// event is read by then.
const qmpGrace = 2 * time.Second

// finish waits for QEMU to exit and returns the reason of its SHUTDOWN
// event ("" when it sent none, or has no QMP) and its exit.
func (p *process) finish() (string, error) {
	<-p.exited
	reason := ""
	if p.reason != nil {
		select {
		case reason = <-p.reason:
		case <-time.After(qmpGrace):
		}
	}
	p.removeSocket()
	return reason, p.err
}
