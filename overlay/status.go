package overlay

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/datapart"
)

// Well-known paths on the booted device (after switch_root).
const (
	RunDir     = "/run/rfs"
	LowerDir   = "/run/rfs/lower"       // the squashfs, read-only
	LayersDir  = "/run/rfs/layers"      // rfs.layers: N/ is layer N (1 = lowest above the root), read-only
	UpperDir   = "/run/rfs/upper"       // upper layer's upper dir, read-only view
	StagingDir = "/run/rfs/.upper-rw"   // rw upper tmpfs during boot only (detached)
	StatusPath = "/run/rfs/status.json" // Status
)

// Version is the rfs version recorded in status.json. Set it with
// -ldflags "-X github.com/rfsbuild/rfs/overlay.Version=...".
var Version = "dev"

// Status is what the init did, written to /run/rfs/status.json.
type Status struct {
	Version  string            `json:"version"`
	Mode     string            `json:"mode"`  // upper mode: "tmpfs"
	Lower    []LayerStatus     `json:"lower"` // the root first, then rfs.layers bottom to top
	Upper    UpperStatus       `json:"upper"`
	Overlay  OverlayStatus     `json:"overlay"`
	Init     string            `json:"init"`
	Timings  Timings           `json:"timings_ms"`
	Data     *DataStatus       `json:"data,omitempty"`        // the data partition, if rfs.data was given
	Volumes  []datapart.Volume `json:"volumes,omitempty"`     // from the lower's /etc/rfs/volumes
	Mounts   []HostMountStatus `json:"host_mounts,omitempty"` // rfs.mount
	Clock    *ClockStatus      `json:"clock,omitempty"`       // what the init did to the clock
	Degraded string            `json:"degraded"`              // why the boot is not what was asked for; "" if it is
	Warnings []string          `json:"warnings,omitempty"`
	Cmdline  string            `json:"cmdline"`
	// Agent is the agent's status (network, clock, SSH), merged in by the
	// agent itself; the init's writes keep it.
	Agent *agentconf.Status `json:"agent,omitempty"`
	// Slots is the A/B state (images with slots): kept current in
	// /run/rfs/slots.json by the trial's health check.
	Slots *SlotStatus `json:"slots,omitempty"`
	// Update is the last update's report: the upper's paths that hide
	// what the release changed (data partition, UpdateReportFile).
	Update *UpdateReport `json:"update,omitempty"`
}

// LayerStatus is one read-only lower layer.
type LayerStatus struct {
	Device     string `json:"device"`   // /dev/vda2
	PARTUUID   string `json:"partuuid"` // "" if unknown
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"` // squashfs
	// BuildID is BUILD_ID of /etc/os-release (the base lower only: the
	// build ID covers the root and the layers).
	BuildID string `json:"build_id,omitempty"`
}

// UpperStatus is the writable layer.
type UpperStatus struct {
	Type       string `json:"type"`             // tmpfs or data
	Options    string `json:"options"`          // tmpfs mount options, e.g. "size=50%,mode=0755"
	Mountpoint string `json:"mountpoint"`       // read-only view of the upper dir
	Device     string `json:"device,omitempty"` // data mode: the data partition
	// MadeAgainst is the build ID of the lower the upper was made
	// against, when it differs from the lower's now (data mode; the
	// record is updated to the new lower at this boot).
	MadeAgainst string `json:"made_against,omitempty"`
}

// DataStatus is the data partition.
type DataStatus struct {
	Device         string                `json:"device"`
	PARTUUID       string                `json:"partuuid"`
	Mountpoint     string                `json:"mountpoint"` // /run/rfs/data
	FSType         string                `json:"fstype"`
	PartitionBytes int64                 `json:"partition_bytes"`
	SizeBytes      int64                 `json:"size_bytes"` // filesystem size (statfs)
	FreeBytes      int64                 `json:"free_bytes"` // available (statfs) at boot
	ResetThisBoot  bool                  `json:"reset_this_boot"`
	LastReset      *datapart.ResetRecord `json:"last_reset,omitempty"` // persisted on the partition
	Grown          *datapart.GrowRecord  `json:"grown,omitempty"`      // this boot
	LastGrow       *datapart.GrowRecord  `json:"last_grow,omitempty"`  // persisted
	Trash          int                   `json:"trash"`                // wiped dirs still being deleted
	Error          string                `json:"error,omitempty"`      // why it is not used
}

// OverlayStatus is the overlay mount itself.
type OverlayStatus struct {
	Mountpoint string `json:"mountpoint"` // "/" after switch_root
	Options    string `json:"options"`    // as passed to mount(2)
}

// Timings are milliseconds per boot phase.
type Timings struct {
	Mounts     float64 `json:"mounts"`      // /dev /proc /sys /run
	RootWait   float64 `json:"root_wait"`   // finding the root device
	Lower      float64 `json:"lower"`       // squashfs mount
	Layers     float64 `json:"layers"`      // rfs.layers: finding and mounting them
	Data       float64 `json:"data"`        // data partition: find, mount, reset, grow, checks
	DataMount  float64 `json:"data_mount"`  // data partition: find + mount only
	Reset      float64 `json:"reset"`       // factory reset (pending or requested)
	Grow       float64 `json:"grow"`        // partition + filesystem growth
	Upper      float64 `json:"upper"`       // tmpfs upper
	Overlay    float64 `json:"overlay"`     // overlay mount + read-only upper view
	SwitchRoot float64 `json:"switch_root"` // 0 until switch_root is done
	Total      float64 `json:"total"`       // init start to the last status write
}

// WriteStatus writes s as JSON to path atomically (temp file + rename).
// Without s.Agent, the agent's status already in the file is kept (the
// agent merges it in; writes racing with the agent's are not merged).
func WriteStatus(path string, s *Status) error {
	if s.Agent == nil {
		if old, err := ReadStatus(path); err == nil && old.Agent != nil {
			c := *s
			c.Agent = old.Agent
			s = &c
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// maxStatus bounds the read of status.json.
const maxStatus = 4 << 20

// ReadStatus reads a status file written by WriteStatus.
func ReadStatus(path string) (*Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatus+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStatus {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStatus)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
