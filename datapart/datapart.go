// Package datapart is the contract of the data partition (the ext4
// filesystem labelled rfs-data) and of the files around it, shared by the
// init and the host tools: its layout (upper/, work/, volumes/, trash/,
// the state and intent files), the reset flag file on the boot partition,
// the volumes and services lists in the lower, the power-cut safe factory
// reset state machine (Dir: the init runs it at boot, `rfs reset --now` on
// the host), and the record of the lower an upper was made against.
// Everything works on a mounted data directory. Standard library only
// (and packages atomicfile and agentconf), so every host OS and the init build it.
package datapart

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/agentconf"
)

// Layout of the data partition.
const (
	Label           = "rfs-data"          // the ext4 label (also the GPT partition name)
	Upper           = "upper"             // the overlay's upper dir
	Work            = "work"              // the overlay's work dir
	Volumes         = "volumes"           // volumes/NAME, bind-mounted by the init
	Trash           = "trash"             // wiped dirs waiting to be deleted
	StateFile       = "rfs-state.json"    // State
	ResetIntentFile = "rfs-reset-pending" // ResetIntent: a reset decided but maybe not done
	UpperRecordFile = "rfs-upper.json"    // UpperRecord: the lower the upper was made against
	// Identity is the device's identity (agentconf.IdentityDir: its SSH
	// host keys): kept by a factory reset, wiped by reset --all.
	Identity = agentconf.IdentityDir
)

// ResetFlagFile is the reset flag on the boot partition's root: its
// content "all" also wipes the volumes.
const ResetFlagFile = "rfs-reset"

// Reset triggers recorded in State.
const (
	TriggerCmdline = "cmdline" // rfs.reset on the kernel command line
	TriggerFlag    = "flag"    // rfs-reset file on the boot partition
	TriggerCommand = "command" // rfs-init reset on the device
	TriggerHost    = "host"    // rfs reset --now on the host
)

// SyncDir makes a directory's entries (creates, renames, unlinks) durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Volume is one line of /etc/rfs/volumes: NAME /absolute/path.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Seeded is set when the volume was created (and seeded from the
	// lower) during this boot.
	Seeded bool `json:"seeded,omitempty"`
	// Error says why the volume is not mounted ("" if it is).
	Error string `json:"error,omitempty"`
}

// VolumesFile is the volume list in the lower layer.
const VolumesFile = "/etc/rfs/volumes"

// ParseVolumes parses the volumes file: one "NAME /absolute/path" per
// line, # comments, blank lines ignored. NAME is [a-z0-9_.-]+ (not . or
// ..), the path absolute and clean and not /. Bad lines are returned as
// warnings and skipped; duplicate names or paths keep the first.
func ParseVolumes(r io.Reader) (vols []Volume, warnings []string) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, []string{"read " + VolumesFile + ": " + err.Error()}
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		where := VolumesFile + " line " + strconv.Itoa(i+1) + ": "
		if len(f) != 2 {
			warnings = append(warnings, where+"expected NAME /absolute/path")
			continue
		}
		name, p := f[0], f[1]
		if !validVolumeName(name) {
			warnings = append(warnings, where+"bad volume name "+strconv.Quote(name)+" (want [a-z0-9_.-]+)")
			continue
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			warnings = append(warnings, where+"bad path "+strconv.Quote(p)+" (want a clean absolute path, not /)")
			continue
		}
		if names[name] || paths[p] {
			warnings = append(warnings, where+"duplicate volume "+name+" "+p+" ignored")
			continue
		}
		names[name], paths[p] = true, true
		vols = append(vols, Volume{Name: name, Path: p})
	}
	return vols, warnings
}

func validVolumeName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ServicesFile lists programs to keep running on userlands whose init
// restarts nothing (u-root): one absolute program path per line, # comments.
// u-root's init runs /bbin/uinit before its shell; rfs links that to the
// init binary, which then starts one supervisor per line and returns.
const ServicesFile = "/etc/rfs/services"

// ReadServices parses ServicesFile content.
func ReadServices(r io.Reader) ([]string, error) {
	var progs []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "/") || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s line %d: want one absolute program path, got %q", ServicesFile, n, line)
		}
		progs = append(progs, line)
	}
	return progs, sc.Err()
}
