//go:build !linux

package flash

import "context"

// Open refuses: writing and verifying a disk needs Linux (see WhyLinux).
func Open(image, target string, opts Options) (*Job, error) { return nil, errNeedsLinux() }

// Close does nothing: Open made no job.
func (j *Job) Close() error { return nil }

// Write refuses, as Open does.
func (j *Job) Write(context.Context) error { return errNeedsLinux() }

// Verify refuses, as Open does.
func (j *Job) Verify(context.Context) error { return errNeedsLinux() }

// Reread refuses, as Open does.
func (j *Job) Reread() error { return errNeedsLinux() }
