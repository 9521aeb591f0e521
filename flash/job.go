package flash

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultChunk is the size of each write and read-back: large, and a
// multiple of the erase block of every SD card.
const DefaultChunk = 4 * MiB

// Options tune a Job.
type Options struct {
	Chunk int // write size; default DefaultChunk
	// Buffered writes through the page cache instead of O_DIRECT.
	Buffered bool
	// ToFile allows a target that is not a block device: a regular file,
	// created if missing, made exactly as long as the image.
	ToFile   bool
	Progress Progress // nil: none
}

// Progress receives the progress of the write and verify phases.
type Progress interface {
	Start(phase string, total int64)
	Add(n int64)
	Done(ok bool)
}

type nopProgress struct{}

func (nopProgress) Start(string, int64) {}
func (nopProgress) Add(int64)           {}
func (nopProgress) Done(bool)           {}

type chunk struct {
	off  int64
	n    int
	zero bool
}

// Job writes one image to one target.
type Job struct {
	Image, Target string
	Plan          *Plan
	IsBlock       bool
	Direct        bool // writes use O_DIRECT

	img    *os.File
	imgSt  os.FileInfo // the image when opened: a change shows in a failed verify
	dev    *os.File    // the write descriptor (O_DIRECT when Direct)
	devBuf *os.File    // buffered descriptor for writes O_DIRECT cannot do
	lbs    int         // logical block size
	opts   Options
	chunks []chunk
	bufs   [][]byte

	Written            int64
	WriteTime, VerTime time.Duration
}

// ErrIncomplete is wrapped by the error of an interrupted or failed write:
// the target holds part of the image and no partition table.
var ErrIncomplete = errors.New("the target is incomplete")

// VerifyError reports the first byte that differs on the target.
type VerifyError struct {
	Target string
	Offset int64 // first differing byte
	Got    byte
	Want   byte
	// ImageChanged: the image was modified after Open, so the difference
	// may be the image's, not the target's.
	ImageChanged bool
}

func (e *VerifyError) Error() string {
	why := "the card may be failing or fake"
	if e.ImageChanged {
		why = "but the image was modified after rfs flash started: flash it again"
	}
	return fmt.Sprintf("verify failed: %s differs from the image at byte %d (0x%x, %s): read 0x%02x, expected 0x%02x; %s",
		e.Target, e.Offset, e.Offset, HumanSize(e.Offset), e.Got, e.Want, why)
}
