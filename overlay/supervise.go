package overlay

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Supervision timing: a program that keeps failing is restarted after
// 1 s, 2 s, 4 s ... at most 30 s; one that ran a minute is healthy again.
const (
	restartMin    = time.Second
	restartMax    = 30 * time.Second
	healthyAfter  = time.Minute
	serviceLogMax = 1 << 20 // NAME.log is moved to NAME.log.1 beyond this
)

// supervisor runs one program again and again (busybox init's respawn,
// for userlands without one), with back-off, a log file and signal
// forwarding so that a shutdown stops it.
type supervisor struct {
	prog, name string
	logDir     string
	stdout     io.Writer // the console
	stderr     io.Writer
	sigs       <-chan os.Signal // SIGTERM, SIGINT: forward, then stop
	// now and after are the clock (tests replace them).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

func newSupervisor(prog, logDir string, stdout, stderr io.Writer, sigs <-chan os.Signal) *supervisor {
	return &supervisor{
		prog: prog, name: filepath.Base(prog), logDir: logDir,
		stdout: stdout, stderr: stderr, sigs: sigs,
		now: time.Now, after: time.After,
	}
}

// run supervises until a signal stops it; it returns the exit status.
func (s *supervisor) run() int {
	log := s.openLog()
	if log != nil {
		defer log.Close()
	}
	out, errOut := teeWriter(s.stdout, log), teeWriter(s.stderr, log)
	delay := restartMin
	for starts := 1; ; starts++ {
		s.recordStart(starts)
		start := s.now()
		status, stop := s.runOnce(out, errOut)
		if stop {
			fmt.Fprintf(errOut, "rfs: service %s stopped (%s)\n", s.name, status)
			return 0
		}
		if s.now().Sub(start) >= healthyAfter {
			delay = restartMin
		}
		fmt.Fprintf(errOut, "rfs: service %s exited (%s); restarting in %s\n", s.name, status, delay)
		select {
		case <-s.after(delay):
		case sig := <-s.sigs:
			fmt.Fprintf(errOut, "rfs: service %s: %v while waiting to restart; stopping\n", s.name, sig)
			return 0
		}
		delay = min(2*delay, restartMax)
	}
}

// recordStart writes how many times the program was started this boot
// (ServicesDir/NAME.starts), for the health check of a trial boot.
func (s *supervisor) recordStart(n int) {
	dir := filepath.Join(filepath.Dir(s.logDir), "services")
	if os.MkdirAll(dir, 0o755) == nil {
		os.WriteFile(filepath.Join(dir, s.name+".starts"), []byte(strconv.Itoa(n)+"\n"), 0o644)
	}
}

// runOnce runs the program to its end. stop reports that a signal came
// (it was forwarded to the program, which has ended since).
func (s *supervisor) runOnce(out, errOut io.Writer) (status string, stop bool) {
	cmd := exec.Command(s.prog)
	cmd.Stdout, cmd.Stderr = out, errOut
	// A program that leaves a child holding its output must not hang us.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return "cannot start: " + err.Error(), false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			return exitStatus(err), stop
		case sig := <-s.sigs:
			cmd.Process.Signal(sig)
			stop = true
		}
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// openLog opens logDir/NAME.log for appending; nil (logged) if it cannot.
func (s *supervisor) openLog() *rotatingLog {
	l := &rotatingLog{path: filepath.Join(s.logDir, s.name+".log"), max: serviceLogMax}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		fmt.Fprintf(s.stderr, "rfs: service %s: no log file: %v\n", s.name, err)
		return nil
	}
	if err := l.open(); err != nil {
		fmt.Fprintf(s.stderr, "rfs: service %s: no log file: %v\n", s.name, err)
		return nil
	}
	return l
}

// rotatingLog is a log file that never grows much beyond max bytes: the
// full file becomes path.1 (replacing the previous one).
type rotatingLog struct {
	mu   sync.Mutex // stdout and stderr are copied by two goroutines
	path string
	max  int64
	f    *os.File
	size int64
}

func (l *rotatingLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *rotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		l.f.Close()
		l.f = nil
		os.Rename(l.path, l.path+".1")
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *rotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// tee writes to every writer and ignores their errors: a console that
// fails or a full log must not stop the program's output to the other.
type tee []io.Writer

func teeWriter(console io.Writer, log *rotatingLog) io.Writer {
	if log == nil {
		return tee{console}
	}
	return tee{console, log}
}

func (t tee) Write(p []byte) (int, error) {
	for _, w := range t {
		w.Write(p)
	}
	return len(p), nil
}
