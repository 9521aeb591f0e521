package clock

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
)

// fakeClock records corrections instead of making them.
type fakeClock struct {
	mu          sync.Mutex
	steps, slew []time.Duration
}

func (f *fakeClock) Step(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = append(f.steps, d)
	return nil
}

func (f *fakeClock) Slew(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slew = append(f.slew, d)
	return nil
}

// sntpServer answers on 127.0.0.1 with the local time shifted by skew.
func sntpServer(t *testing.T, skew time.Duration) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			c.WriteTo(sntpReply(buf[:48], time.Now().Add(skew)), peer)
		}
	}()
	return c.LocalAddr().String()
}

// sntpReply is a stratum-2 server's answer (RFC 4330): origin is the
// request's transmit time, receive and transmit are now.
func sntpReply(req []byte, now time.Time) []byte {
	r := make([]byte, 48)
	r[0] = 0<<6 | 4<<3 | 4                   // no leap warning, version 4, server
	r[1] = 2                                 // stratum
	r[2] = 6                                 // poll
	r[3] = 0xec                              // precision
	binary.BigEndian.PutUint32(r[4:], 1<<12) // root delay 1/16 s
	binary.BigEndian.PutUint32(r[8:], 1<<12) // root dispersion
	copy(r[12:16], "TEST")                   // reference id
	putTime(r[16:], now.Add(-time.Minute))   // reference time
	copy(r[24:32], req[40:48])               // origin
	putTime(r[32:], now)                     // receive
	putTime(r[40:], now)                     // transmit
	return r
}

func putTime(b []byte, t time.Time) {
	const era = 2208988800 // 1900 to 1970
	secs := uint64(t.Unix()) + era
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}

func newBoard(t *testing.T) (*agent.Board, *bytes.Buffer) {
	var log bytes.Buffer
	return &agent.Board{StatusPath: filepath.Join(t.TempDir(), "status.json"), Log: &log}, &log
}

func TestSyncStepOrSlew(t *testing.T) {
	for _, c := range []struct {
		name string
		skew time.Duration
		step bool
	}{
		{"behind by 10s: step", 10 * time.Second, true},
		{"ahead by an hour: step", -time.Hour, true},
		{"100ms: slew", 100 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc := &fakeClock{}
			b, _ := newBoard(t)
			j := &Job{Servers: []string{"127.0.0.1:1", sntpServer(t, c.skew)}, Clock: fc, b: b, Timeout: time.Second}
			if err := j.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := append(fc.steps, fc.slew...)
			if len(got) != 1 || (len(fc.steps) == 1) != c.step {
				t.Fatalf("steps %v, slews %v", fc.steps, fc.slew)
			}
			if d := got[0] - c.skew; d > 50*time.Millisecond || d < -50*time.Millisecond {
				t.Errorf("offset %v, want about %v", got[0], c.skew)
			}
			st := j.status
			if !st.Synchronized || st.Source != "ntp" || st.Server != j.Servers[1] || st.LastSync.IsZero() {
				t.Errorf("status %+v", st)
			}
			var s agentconf.Status
			data, _ := os.ReadFile(b.StatusPath)
			if err := json.Unmarshal(data, &s); err != nil || !s.Clock.Synchronized {
				t.Errorf("published %s (%v)", data, err)
			}
		})
	}
}

func TestSyncRefusesImplausible(t *testing.T) {
	fc := &fakeClock{}
	b, _ := newBoard(t)
	j := &Job{Servers: []string{sntpServer(t, time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Sub(time.Now()))}, Clock: fc, b: b, Timeout: time.Second}
	err := j.sync(context.Background())
	if err == nil || len(fc.steps)+len(fc.slew) != 0 {
		t.Errorf("err %v, steps %v", err, fc.steps)
	}
	if !strings.Contains(err.Error(), "implausible time 1990-01-01") {
		t.Errorf("err %q does not say why the answer was refused", err)
	}
}

func TestNoServerAnswers(t *testing.T) {
	// A bound UDP socket that never answers: the query times out locally.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	b, log := newBoard(t)
	fc := &fakeClock{}
	j := &Job{Servers: []string{silent.LocalAddr().String()}, Clock: fc, SavePath: filepath.Join(t.TempDir(), "none", "clock"),
		Timeout: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := j.Run(ctx, b); err != nil {
		t.Fatal(err)
	}
	if l := log.String(); !strings.Contains(l, "no NTP server answered (") || !strings.Contains(l, "i/o timeout); retrying in 2s") ||
		strings.Contains(l, "retrying in 4s") {
		t.Errorf("log (want the first failure only, with its cause):\n%s", l)
	}
	if j.status.Synchronized || !strings.Contains(j.status.Error, "retrying in") {
		t.Errorf("status %+v", j.status)
	}
}

func TestPollAndRetry(t *testing.T) {
	var got []time.Duration
	var d time.Duration
	for range 6 {
		d = nextPoll(d)
		got = append(got, d/time.Second)
	}
	if want := []time.Duration{64, 128, 256, 512, 1024, 1024}; !slices.Equal(got, want) {
		t.Errorf("polls %v, want %v", got, want)
	}
	for n, want := range []time.Duration{2, 4, 8, 16, 32, 64, 64} {
		if r := retryAfter(n); r != want*time.Second {
			t.Errorf("retryAfter(%d) = %v", n, r)
		}
	}
	if retryAfter(1<<20) != maxRetry {
		t.Error("retryAfter does not cap")
	}
}

func TestSaveClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, agentconf.ClockFile)
	now := time.Date(2026, 12, 2, 13, 0, 0, 500, time.FixedZone("x", 3600))
	if err := saveClock(path, now, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2026-12-02T12:00:00Z\n" {
		t.Errorf("saved %q", b)
	}
	// Unsynchronised and behind the saved time: keep the saved time.
	if err := saveClock(path, now.Add(-time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2026-12-02T12:00:00Z\n" {
		t.Errorf("unsynchronised clock moved the saved time back: %q", b)
	}
	// NTP's word moves it back.
	if err := saveClock(path, now.Add(-time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2026-12-02T11:00:00Z\n" {
		t.Errorf("synchronised save: %q", b)
	}
	// No data partition: nothing written, no error.
	missing := filepath.Join(dir, "absent", agentconf.ClockFile)
	if err := saveClock(missing, now, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("wrote without a data directory")
	}
}

func TestRunSyncsAndSavesOnExit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, agentconf.ClockFile)
	fc := &fakeClock{}
	b, _ := newBoard(t)
	j := &Job{Servers: []string{sntpServer(t, 2*time.Second)}, Clock: fc, SavePath: path, Timeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx, b) }()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
	}
	os.Remove(path)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("not saved on exit: %v", err)
	}
	saved, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b2)))
	if err != nil || time.Since(saved) > time.Minute {
		t.Errorf("saved %q (%v)", b2, err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.steps) != 1 {
		t.Errorf("steps %v", fc.steps)
	}
}

func TestNoServersOnlySaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, agentconf.ClockFile)
	b, log := newBoard(t)
	j := &Job{Clock: &fakeClock{}, SavePath: path}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.Run(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("not saved: %v", err)
	}
	if !strings.Contains(log.String(), "no NTP servers") {
		t.Errorf("log %q", log.String())
	}
}

func TestLogFailure(t *testing.T) {
	var logged []int
	for n := 1; n <= 40; n++ {
		if logFailure(n) {
			logged = append(logged, n)
		}
	}
	if want := []int{1, 16, 32}; !slices.Equal(logged, want) {
		t.Errorf("failures logged %v, want %v", logged, want)
	}
}
