package overlay

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/datapart"
)

// HelperUsage is printed by `rfs-init help`.
const HelperUsage = `usage (on the booted device, not as PID 1):
  rfs-init status [--json]          upper mode, data partition size/free, last reset, degraded reason,
                                    network, clock and SSH (from the agent)
  rfs-init diff [--json]            what changed since the factory state: A added, C changed, D deleted
  rfs-init update [--force] [--no-reboot] REF
                                    install the signed release REF (registry/repo:tag, or http://HOST/REPO:TAG)
                                    into the inactive A/B slot and reboot into it for a trial boot
  rfs-init reset [--all] [--no-reboot]
                                    schedule a factory reset (upper and work; --all: also volumes and SSH host keys)
                                    on the data partition and reboot; the init performs it at boot
`

// Helper runs the on-device commands of the init binary (installed at
// /run/rfs/bin/rfs-init). It returns the exit status.
func Helper(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, HelperUsage)
		return 2
	}
	switch args[0] {
	case "status":
		return helperStatus(args[1:], stdout, stderr)
	case "reset":
		return helperReset(args[1:], stdout, stderr)
	case "gc":
		return helperGC(args[1:], stdout, stderr)
	case "diff":
		return helperDiff(args[1:], stdout, stderr)
	case "services":
		return helperServices(stdout, stderr)
	case "supervise":
		return helperSupervise(args[1:], stdout, stderr)
	case "slot-health":
		return helperSlotHealth(args[1:], stdout, stderr)
	case "update":
		return helperUpdate(args[1:], stderr)
	case "help", "-h", "--help":
		io.WriteString(stdout, HelperUsage)
		return 0
	}
	fmt.Fprintf(stderr, "rfs-init: unknown command %q\n%s", args[0], HelperUsage)
	return 2
}

// IsHelperCommand reports whether args (without argv[0]) ask for a helper.
func IsHelperCommand(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "status", "reset", "gc", "diff", "services", "supervise", "slot-health", "update", "help", "-h", "--help":
		return true
	}
	return false
}

// statusRoot is "" on the device; tests point it at a scratch tree.
var statusRoot = ""

func helperStatus(args []string, stdout, stderr io.Writer) int {
	asJSON := false
	for _, a := range args {
		if a != "--json" {
			fmt.Fprintf(stderr, "rfs-init status: unknown option %s\n", a)
			return 2
		}
		asJSON = true
	}
	s, err := liveStatus(statusRoot)
	if err != nil {
		fmt.Fprintf(stderr, "rfs-init status: %v (was the system booted by rfs-init?)\n", err)
		return 1
	}
	if asJSON {
		b, _ := json.MarshalIndent(s, "", "  ")
		stdout.Write(append(b, '\n'))
		return 0
	}
	writeStatusText(stdout, s)
	return 0
}

// liveStatus reads status.json under root ("" on the device) and
// refreshes what changes while the system runs: the data partition's
// free space and records, and the agent's status (agentconf.StatusFile,
// preferred to the copy the agent merges into status.json).
func liveStatus(root string) (*Status, error) {
	s, err := ReadStatus(root + StatusPath)
	if err != nil {
		return nil, err
	}
	if s.Data != nil && (s.Data.Error == "" || s.Data.Error == "full") {
		refreshData(root, s)
	}
	if st, err := readSlotStatus(root + SlotsStatus); err == nil {
		s.Slots = st
		if b, err := readBounded(root+UpdateProgress, 4096); err == nil {
			st.Progress = strings.TrimSpace(string(b))
		}
	}
	if s.Data != nil && s.Data.Error == "" {
		if r, err := readUpdateReport(root + s.Data.Mountpoint); err != nil {
			s.Warnings = append(s.Warnings, "update report: "+err.Error())
		} else if r != nil {
			s.Update = r
		}
	}
	a, err := readAgentStatus(root + agentconf.StatusFile)
	switch {
	case err != nil:
		s.Warnings = append(s.Warnings, "agent status: "+err.Error())
	case a != nil:
		s.Agent = a
	}
	if _, err := os.Stat(root + agentconf.ConfigFile); err == nil && s.Agent == nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the agent is configured (%s) but has published no status (%s); see %s/%s.log", agentconf.ConfigFile, agentconf.StatusFile, agentconf.LogDir, filepath.Base(agentconf.Binary)))
	}
	return s, nil
}

func refreshData(root string, s *Status) {
	dir := root + s.Data.Mountpoint
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) == nil {
		s.Data.SizeBytes = int64(sfs.Blocks) * int64(sfs.Bsize)
		s.Data.FreeBytes = int64(sfs.Bavail) * int64(sfs.Bsize)
	}
	if st, err := dataDir(dir).ReadState(); err == nil {
		s.Data.LastReset = st.LastReset
		s.Data.LastGrow = st.LastGrow
	}
	s.Data.Trash = len(dataDir(dir).TrashEntries())
	if in, _ := dataDir(dir).ReadResetIntent(); in != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("factory reset pending (%s, requested %s%s): performed at the next boot", in.Trigger, in.Time, map[bool]string{true: ", all"}[in.All]))
	}
}

// writeStatusText is `rfs-init status` without --json.
func writeStatusText(out io.Writer, s *Status) {
	w := func(k, v string) { fmt.Fprintf(out, "%-14s %s\n", k+":", v) }
	w("upper", s.Mode)
	if s.Upper.Device != "" {
		w("upper device", s.Upper.Device)
	}
	if len(s.Lower) > 0 && s.Lower[0].BuildID != "" {
		w("lower build", s.Lower[0].BuildID)
	}
	if s.Upper.MadeAgainst != "" {
		w("upper made", "against build "+s.Upper.MadeAgainst+" (recorded as the lower's build at this boot)")
	}
	writeDataText(w, s.Data)
	for _, v := range s.Volumes {
		st := "mounted"
		if v.Error != "" {
			st = "NOT mounted: " + v.Error
		}
		w("volume", fmt.Sprintf("%s on %s (%s)", v.Name, v.Path, st))
	}
	if c := s.Clock; c != nil && c.SetTo != "" {
		w("boot clock", fmt.Sprintf("set from %s to the %s time %s", c.Kernel, c.Source, c.SetTo))
	}
	if s.Degraded != "" {
		w("DEGRADED", s.Degraded)
	} else {
		w("degraded", "no")
	}
	for _, x := range s.Warnings {
		w("warning", x)
	}
	if s.Slots != nil {
		writeSlotsText(w, s.Slots)
	}
	if r := s.Update; r != nil {
		writeUpdateReportText(w, r)
	}
	if s.Agent != nil {
		writeAgentText(out, s.Agent)
	}
	w("version", s.Version)
}

func writeDataText(w func(k, v string), d *DataStatus) {
	if d == nil {
		w("data", "none (rfs.data not given)")
		return
	}
	state := "in use"
	if d.Error != "" {
		state = "not used: " + d.Error
	}
	w("data", fmt.Sprintf("%s PARTUUID=%s on %s (%s)", d.Device, d.PARTUUID, d.Mountpoint, state))
	if d.SizeBytes > 0 {
		w("data size", fmt.Sprintf("%s, %s free", humanSize(d.SizeBytes), humanSize(d.FreeBytes)))
	}
	if r := d.LastReset; r != nil {
		what := "upper"
		if r.All {
			what = "upper and volumes"
		}
		w("last reset", fmt.Sprintf("%s by %s (%s)", r.Time, r.Trigger, what))
	} else {
		w("last reset", "never")
	}
	if g := d.LastGrow; g != nil {
		w("grown", fmt.Sprintf("%s: %s -> %s", g.Time, humanSize(g.FromBytes), humanSize(g.ToBytes)))
	}
	if d.Trash > 0 {
		w("trash", fmt.Sprintf("%d wiped dir(s) still being deleted", d.Trash))
	}
}

func helperReset(args []string, stdout, stderr io.Writer) int {
	all, reboot := false, true
	for _, a := range args {
		switch a {
		case "--all":
			all = true
		case "--no-reboot":
			reboot = false
		default:
			fmt.Fprintf(stderr, "rfs-init reset: unknown option %s\n", a)
			return 2
		}
	}
	s, err := ReadStatus(statusRoot + StatusPath)
	if err != nil || s.Data == nil || (s.Data.Error != "" && s.Data.Error != "full") {
		why := "no data partition is mounted"
		if err != nil {
			why = err.Error()
		} else if s.Data != nil {
			why = "the data partition is not usable: " + s.Data.Error
		}
		fmt.Fprintf(stderr, "rfs-init reset: %s; boot once with rfs.reset on the kernel command line, or create the file %s on the boot partition\n", why, datapart.ResetFlagFile)
		return 1
	}
	dir := statusRoot + s.Data.Mountpoint
	in, err := dataDir(dir).ScheduleReset(datapart.TriggerCommand, all, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "rfs-init reset: %v\n", err)
		return 1
	}
	what := "the upper layer (volumes are kept)"
	if in.All {
		what = "the upper layer, all volumes and the SSH host keys"
	}
	fmt.Fprintf(stdout, "factory reset of %s scheduled; it happens at the next boot\n", what)
	if !reboot {
		return 0
	}
	fmt.Fprintln(stdout, "rebooting")
	unix.Sync()
	if p, err := exec.LookPath("reboot"); err == nil {
		if err := exec.Command(p).Run(); err == nil {
			return 0
		}
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Fprintf(stderr, "rfs-init reset: reboot: %v; reboot to perform the reset\n", err)
		return 1
	}
	return 0
}

// helperGC deletes the data partition's trash (started in the background
// by the init with low CPU and I/O priority).
func helperGC(args []string, stdout, stderr io.Writer) int {
	dir := DataDir
	if len(args) == 1 {
		dir = args[0]
	}
	unix.Setpriority(unix.PRIO_PROCESS, 0, 19)
	// ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE<<13)
	unix.Syscall(unix.SYS_IOPRIO_SET, 1, 0, 3<<13)
	t0 := time.Now()
	n := 0
	for _, e := range dataDir(dir).TrashEntries() {
		n += countTree(filepath.Join(dir, datapart.Trash, e))
	}
	err := dataDir(dir).RemoveTrash()
	msg := fmt.Sprintf("%s rfs-init gc: deleted %d entries from %s/%s in %.3fs", time.Now().UTC().Format(time.RFC3339), n, dir, datapart.Trash, time.Since(t0).Seconds())
	if err != nil {
		msg += ": " + err.Error()
	}
	fmt.Fprintln(stdout, msg)
	if err != nil {
		return 1
	}
	return 0
}

func countTree(p string) int {
	n := 1
	if f, err := os.Open(p); err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, c := range names {
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(p, c), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				n += countTree(filepath.Join(p, c))
			} else {
				n++
			}
		}
	}
	return n
}

// writeSlotsText is the A/B part of `rfs-init status`.
func writeSlotsText(w func(k, v string), st *SlotStatus) {
	slot := st.Booted
	if st.Version != "" {
		slot += " (version " + st.Version + ")"
	}
	switch {
	case st.Trial == st.Booted && st.Health != "":
		slot += ", on trial: " + st.Health
	case st.Committed != "" && st.Committed != st.Booted:
		slot += ", not committed (slot " + st.Committed + " is)"
	default:
		slot += ", committed"
	}
	w("slot", slot)
	if st.Trial != "" && st.Trial != st.Booted {
		w("update", "slot "+st.Trial+" is armed for a trial boot")
	}
	if l := st.Last; l != nil {
		line := fmt.Sprintf("slot %s version %s %s", l.Slot, l.Version, l.Outcome)
		if l.Reason != "" {
			line += ": " + l.Reason
		}
		if l.Time != "" {
			line += " (" + l.Time + ")"
		}
		w("last update", line)
	}
	if st.Progress != "" {
		w("update", st.Progress)
	}
	if st.Error != "" {
		w("slot error", st.Error)
	}
}

// writeUpdateReportText lists what the upper hides of the last release.
func writeUpdateReportText(w func(k, v string), r *UpdateReport) {
	more := ""
	if r.Truncated {
		more = " (truncated)"
	}
	w("update report", fmt.Sprintf("slot %s version %s at %s: %d path(s) in the upper shadow the release%s", r.Slot, r.Version, r.Time, len(r.Shadowed), more))
	for _, sh := range r.Shadowed {
		w("shadowed", sh.Path+": "+sh.Why)
	}
	for _, p := range r.Dropped {
		w("reset path", p+": the upper's copy was dropped")
	}
}

// helperUpdate is `rfs-init update`: the agent does it (it has the
// registry client; the init stays small).
func helperUpdate(args []string, stderr io.Writer) int {
	argv := append([]string{agentconf.Binary, "update"}, args...)
	err := unix.Exec(agentconf.Binary, argv, os.Environ())
	fmt.Fprintf(stderr, "rfs-init update: %s: %v (is this image built with the agent and A/B slots?)\n", agentconf.Binary, err)
	return 1
}
