package clock

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// SystemClock is the kernel's wall clock.
type SystemClock struct{}

// Step implements Setter with clock_settime.
func (SystemClock) Step(off time.Duration) error {
	ts := unix.NsecToTimespec(time.Now().Add(off).UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_settime: %w", err)
	}
	return nil
}

// Slew implements Setter with adjtimex's one-shot offset (the old
// adjtime): the kernel runs the clock 0.05% fast or slow until the offset
// is absorbed, at most 1000 s for the 0.5 s the job slews.
func (SystemClock) Slew(off time.Duration) error {
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT}
	setInt(&tx.Offset, off.Microseconds())
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	return nil
}

// setInt stores v in a Timex field, int32 or int64 by architecture.
func setInt[T ~int32 | ~int64](p *T, v int64) { *p = T(v) }
