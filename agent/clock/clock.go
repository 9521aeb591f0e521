// Package clock is the agent's time job: it sets the wall clock from NTP
// servers (beevik/ntp), stepping large errors and slewing small ones, and
// saves the time on the data partition (agentconf.ClockFile) so the init
// can restore it at the next boot before any network is up. On-device
// code.
package clock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/beevik/ntp"
	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/atomicfile"
)

// Setter changes the wall clock; tests give a fake one so the host's
// clock is never touched.
type Setter interface {
	// Step jumps the clock by offset.
	Step(offset time.Duration) error
	// Slew makes the kernel absorb offset gradually.
	Slew(offset time.Duration) error
}

// Poll and save timings.
const (
	stepOver     = 500 * time.Millisecond // a larger error is stepped
	minPoll      = 64 * time.Second
	maxPoll      = 1024 * time.Second
	firstRetry   = 2 * time.Second
	maxRetry     = 64 * time.Second
	saveEvery    = 15 * time.Minute
	queryTimeout = 5 * time.Second
)

// Times an NTP answer may set; anything else is a broken or hostile
// server (the init refuses the same range from the saved file).
var (
	earliestSane = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	latestSane   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Job is the clock job.
type Job struct {
	// Servers are NTP servers, host or host:port; none: the job only
	// saves the clock.
	Servers []string
	// SavePath is where the time is saved; empty: agentconf.ClockFile in
	// agentconf.DataDir. Nothing is saved when its directory is missing
	// (no data partition).
	SavePath string
	// Clock sets the clock; nil: the kernel's (SystemClock).
	Clock Setter
	// Timeout bounds one server's answer; 0: 5 s.
	Timeout time.Duration

	b      *agent.Board
	status agentconf.ClockStatus
}

// Name implements agent.Job.
func (j *Job) Name() string { return "clock" }

// Run implements agent.Job: it polls the servers and saves the clock
// until ctx ends, then saves it once more. It never fails: no answer is
// logged and retried.
func (j *Job) Run(ctx context.Context, b *agent.Board) error {
	j.b = b
	if j.Clock == nil {
		j.Clock = SystemClock{}
	}
	if j.SavePath == "" {
		j.SavePath = filepath.Join(agentconf.DataDir, agentconf.ClockFile)
	}
	if len(j.Servers) == 0 {
		b.Logf("clock: no NTP servers configured; only saving the clock")
		j.publish(func(s *agentconf.ClockStatus) { s.Error = "no NTP servers configured" })
	}
	save := time.NewTicker(saveEvery)
	defer save.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	if len(j.Servers) == 0 {
		poll.Stop()
	}
	interval, fails := time.Duration(0), 0
	for {
		select {
		case <-ctx.Done():
			j.save()
			return nil
		case <-save.C:
			j.save()
		case <-poll.C:
			if err := j.sync(ctx); err != nil {
				wait := retryAfter(fails)
				fails++
				msg := fmt.Sprintf("%v; retrying in %s", err, wait)
				if logFailure(fails) {
					// The console is someone's shell: the first failure and
					// then one in 16 (about every 17 minutes).
					b.Logf("clock: %s", msg)
				}
				j.publish(func(s *agentconf.ClockStatus) { s.Error = msg })
				poll.Reset(wait)
				continue
			}
			fails, interval = 0, nextPoll(interval)
			j.save()
			poll.Reset(interval)
		}
	}
}

// nextPoll is the wait after a success: 64 s, doubling to 1024 s.
func nextPoll(last time.Duration) time.Duration {
	return min(max(last*2, minPoll), maxPoll)
}

// retryAfter is the wait after the n-th failure in a row (from 0): 2 s
// doubling to 64 s.
func retryAfter(n int) time.Duration {
	if n > 5 {
		return maxRetry
	}
	return min(firstRetry<<n, maxRetry)
}

// errNoAnswer is every server failing.
var errNoAnswer = errors.New("no NTP server answered")

// sync asks the servers in turn and corrects the clock from the first
// good answer.
func (j *Job) sync(ctx context.Context) error {
	var last error
	for _, srv := range j.Servers {
		off, err := j.query(ctx, srv)
		if err != nil {
			last = err
			continue
		}
		if err := j.correct(off); err != nil {
			return fmt.Errorf("set clock from %s: %w", srv, err)
		}
		if !j.status.Synchronized || off > stepOver || off < -stepOver {
			j.b.Logf("clock: synchronized with %s (offset %s)", srv, off.Round(time.Millisecond))
		}
		j.publish(func(s *agentconf.ClockStatus) {
			*s = agentconf.ClockStatus{Synchronized: true, Source: "ntp", Server: srv,
				LastSync: time.Now().UTC().Truncate(time.Second), OffsetMS: millis(off)}
		})
		return nil
	}
	if last != nil {
		return fmt.Errorf("%w (%v)", errNoAnswer, last)
	}
	return errNoAnswer
}

// logFailure tells whether the n-th failure in a row (from 1) is logged.
func logFailure(n int) bool { return n == 1 || n%16 == 0 }

// query asks one server and checks its answer. Name lookup and dialing
// end with ctx; the answer is waited for at most Timeout.
func (j *Job) query(ctx context.Context, srv string) (time.Duration, error) {
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = queryTimeout
	}
	dial := func(_, remote string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		return d.DialContext(dctx, "udp", remote)
	}
	r, err := ntp.QueryWithOptions(srv, ntp.QueryOptions{Timeout: timeout, Dialer: dial})
	if err != nil {
		return 0, fmt.Errorf("ntp %s: %w", srv, err)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("ntp %s: %w", srv, err)
	}
	if t := time.Now().Add(r.ClockOffset); t.Before(earliestSane) || !t.Before(latestSane) {
		return 0, fmt.Errorf("ntp %s: implausible time %s", srv, t.UTC().Format(time.RFC3339))
	}
	return r.ClockOffset, nil
}

// correct steps a large error, slews a small one.
func (j *Job) correct(off time.Duration) error {
	if off > stepOver || off < -stepOver {
		return j.Clock.Step(off)
	}
	return j.Clock.Slew(off)
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func (j *Job) publish(f func(*agentconf.ClockStatus)) {
	f(&j.status)
	st := j.status
	j.b.Update(func(s *agentconf.Status) { s.Clock = st })
}

// save writes the wall time, unless there is no data partition, or the
// clock is unsynchronised and behind the saved time (the saved time only
// moves back on NTP's word).
func (j *Job) save() {
	if err := saveClock(j.SavePath, time.Now(), j.status.Synchronized); err != nil {
		j.b.Logf("clock: %v", err)
	}
}

func saveClock(path string, now time.Time, synced bool) error {
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil
	}
	if !synced {
		if old, err := readSaved(path); err == nil && old.After(now) {
			return nil
		}
	}
	data := now.UTC().Truncate(time.Second).Format(time.RFC3339) + "\n"
	if err := atomicfile.WriteFile(path, []byte(data), 0o644); err != nil {
		return fmt.Errorf("save clock: %w", err)
	}
	return nil
}

// readSaved reads a saved time, at most 128 bytes.
func readSaved(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, _ := f.Read(buf)
	s := string(buf[:n])
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return time.Parse(time.RFC3339Nano, s)
}
