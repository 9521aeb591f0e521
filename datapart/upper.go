package datapart

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// UpperRecord ties the upper to the lower it was made against
// (UpperRecordFile, next to upper/). The init writes it with a persistent
// upper: on the first boot, after a reset, and whenever the lower's build
// ID changed (a new image flashed while the data partition was kept, or a
// layer added), after saying so; so it names the lower the upper's newest
// changes were made against.
type UpperRecord struct {
	// LowerBuildID is BUILD_ID from the base lower's /etc/os-release (the
	// build ID covers the root and the layers).
	LowerBuildID string `json:"lower_build_id"`
}

// maxRecord bounds what is read of an upper record: it is a few dozen
// bytes, and a card's data partition is untrusted.
const maxRecord = 64 << 10

// ParseUpperRecord decodes an upper record (the host reads it from an
// image's data partition, the init from the mounted one).
func ParseUpperRecord(r io.Reader) (*UpperRecord, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", UpperRecordFile, err)
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%s: larger than %d bytes", UpperRecordFile, maxRecord)
	}
	var rec UpperRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", UpperRecordFile, err)
	}
	return &rec, nil
}

// ReadUpperRecord reads UpperRecordFile; nil without error if there is none.
func (d Dir) ReadUpperRecord() (*UpperRecord, error) {
	f, err := os.Open(d.path(UpperRecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseUpperRecord(f)
}

// WriteUpperRecord writes UpperRecordFile atomically and durably.
func (d Dir) WriteUpperRecord(rec *UpperRecord) error {
	return writeJSON(d.path(UpperRecordFile), rec, false)
}
