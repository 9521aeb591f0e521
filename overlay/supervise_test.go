package overlay

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a console that the supervisor may write from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeClock makes run i of the program last runs[i], and records the
// restart delays; after the last expected delay it sends SIGTERM.
func fakeClock(s *supervisor, sigs chan os.Signal, runs []time.Duration, n int) *[]time.Duration {
	var t time.Time
	calls := 0
	s.now = func() time.Time {
		calls++
		if i := calls/2 - 1; calls%2 == 0 && i < len(runs) {
			t = t.Add(runs[i])
		}
		return t
	}
	var delays []time.Duration
	s.after = func(d time.Duration) <-chan time.Time {
		delays = append(delays, d)
		if len(delays) == n {
			sigs <- syscall.SIGTERM
			return nil
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	return &delays
}

// TestSuperviseBackoff: restarts after 1 s doubling to 30 s, back to 1 s
// after a run of a minute; the output and the supervisor's lines reach
// the console and NAME.log.
func TestSuperviseBackoff(t *testing.T) {
	const s1, s2, s4, s8, s16, s30 = time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second
	for _, tc := range []struct {
		name string
		runs []time.Duration
		want []time.Duration
	}{
		{"failing", nil, []time.Duration{s1, s2, s4, s8, s16, s30, s30}},
		{"healthy again", []time.Duration{0, 0, 0, time.Minute, 0, 59 * time.Second}, []time.Duration{s1, s2, s4, s1, s2, s4}},
		{"short runs", []time.Duration{time.Second, 30 * time.Second}, []time.Duration{s1, s2, s4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := writeScript(t, "echo hello; echo oops >&2; exit 3")
			logDir := filepath.Join(t.TempDir(), "log")
			var out, errOut lockedBuffer
			sigs := make(chan os.Signal, 1)
			s := newSupervisor(prog, logDir, &out, &errOut, sigs)
			delays := fakeClock(s, sigs, tc.runs, len(tc.want))
			if rc := s.run(); rc != 0 {
				t.Errorf("exit status %d", rc)
			}
			if !slices.Equal(*delays, tc.want) {
				t.Errorf("delays %v, want %v", *delays, tc.want)
			}
			log, _ := os.ReadFile(filepath.Join(logDir, "prog.log"))
			for _, w := range []struct{ where, got, want string }{
				{"console stdout", out.String(), "hello\n"},
				{"console stderr", errOut.String(), "oops\nrfs: service prog exited (exit status 3); restarting in 1s\n"},
				{"log", string(log), "rfs: service prog exited (exit status 3); restarting in 2s\n"},
				{"log", string(log), "hello\n"},
				{"log", string(log), "oops\n"},
				{"log", string(log), "rfs: service prog: terminated while waiting to restart; stopping\n"},
			} {
				if !strings.Contains(w.got, w.want) {
					t.Errorf("%s lacks %q:\n%s", w.where, w.want, w.got)
				}
			}
		})
	}
}

// TestSuperviseCannotStart: a missing program is retried with back-off.
func TestSuperviseCannotStart(t *testing.T) {
	var errOut lockedBuffer
	sigs := make(chan os.Signal, 1)
	s := newSupervisor(filepath.Join(t.TempDir(), "missing"), t.TempDir(), &lockedBuffer{}, &errOut, sigs)
	delays := fakeClock(s, sigs, nil, 2)
	s.run()
	if len(*delays) != 2 || !strings.Contains(errOut.String(), "rfs: service missing exited (cannot start: ") {
		t.Errorf("delays %v, console:\n%s", *delays, errOut.String())
	}
}

// TestSuperviseSignal: SIGTERM reaches the program, and the supervisor
// exits once it has ended (so that a shutdown is not held up).
func TestSuperviseSignal(t *testing.T) {
	prog := writeScript(t, "trap 'echo got TERM; exit 0' TERM\necho started\nwhile :; do sleep 0.05; done")
	logDir := t.TempDir()
	sigs := make(chan os.Signal, 1)
	s := newSupervisor(prog, logDir, &lockedBuffer{}, &lockedBuffer{}, sigs)
	done := make(chan int, 1)
	go func() { done <- s.run() }()
	logPath := filepath.Join(logDir, "prog.log")
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "started") {
			break
		}
		if i == 500 {
			t.Fatal("the program did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sigs <- syscall.SIGTERM
	select {
	case rc := <-done:
		if rc != 0 {
			t.Errorf("exit status %d", rc)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not stop")
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "got TERM\n") || !strings.Contains(string(log), "rfs: service prog stopped (exit status 0)\n") {
		t.Errorf("log:\n%s", log)
	}
}

// TestRotatingLog: a full log becomes NAME.log.1 (replacing the older
// one); an existing log's size counts.
func TestRotatingLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.log")
	os.WriteFile(p, []byte(strings.Repeat("a", 60)), 0o644)
	l := &rotatingLog{path: p, max: 100}
	if err := l.open(); err != nil {
		t.Fatal(err)
	}
	for _, c := range "bcd" {
		if _, err := l.Write([]byte(strings.Repeat(string(c), 60))); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cur, _ := os.ReadFile(p)
	old, _ := os.ReadFile(p + ".1")
	if string(cur) != strings.Repeat("d", 60) || string(old) != strings.Repeat("c", 60) {
		t.Errorf("log %q, log.1 %q", cur, old)
	}
}
