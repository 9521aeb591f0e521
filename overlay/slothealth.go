package overlay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/slots"
)

// ServicesDir holds NAME.starts for each supervised program: how many
// times it was started this boot (the health check's "stayed up").
const ServicesDir = "/run/rfs/services"

// healthCommandTimeout bounds the configured health command.
const healthCommandTimeout = time.Minute

// helperSlotHealth is `rfs-init slot-health BOOTDEV`, started by the init
// on a trial boot: after the configured time it checks the services and
// the health command, then commits the slot (slot.txt first, then the
// record: a cut between them boots the trial slot again, whose check
// commits it again) or rolls back and reboots.
func helperSlotHealth(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: rfs-init slot-health BOOTDEV (started by the init on a trial boot)")
		return 2
	}
	st, err := readSlotStatus(SlotsStatus)
	if err != nil {
		fmt.Fprintf(stderr, "rfs: update: %v\n", err)
		return 1
	}
	cfg := readUpdateConfig(stderr)
	wait := cfg.HealthWait()
	st.Health = "checking for " + wait.String()
	writeSlotStatus(SlotsStatus, st)
	time.Sleep(wait)
	reason := checkHealth(cfg)
	f, err := mountBootFAT(args[0], SlotsStaging+"-health", "")
	if err != nil {
		fmt.Fprintf(stderr, "rfs: update: %v: slot %s is not committed\n", err, st.Booted)
		return 1
	}
	err = settleTrial(f, st, reason, stdout)
	f.close()
	writeSlotStatus(SlotsStatus, st)
	if err != nil {
		fmt.Fprintf(stderr, "rfs: update: %v\n", err)
		return 1
	}
	if reason != "" {
		rebootSystem(stderr)
	}
	return 0
}

// settleTrial commits the trial (reason "") or rolls it back.
func settleTrial(f *bootFAT, st *SlotStatus, reason string, out io.Writer) error {
	s, err := f.state()
	if err != nil {
		return err
	}
	if s.Trial != st.Booted {
		return fmt.Errorf("slot %s is no longer on trial (the record names %q): nothing to do", st.Booted, s.Trial)
	}
	now := time.Now()
	if reason == "" {
		if slots.IsPi(s.Firmware) {
			// config.txt, then tryboot.txt, before slot.txt and the
			// record: a cut after config.txt boots the trial slot
			// again, whose check commits it again.
			if err := f.commitPi(st.Booted); err != nil {
				return err
			}
		}
		if err := f.write(slots.FirmwareFile, slots.FirmwareContent(st.Booted)); err != nil {
			return err
		}
		c := s.Commit(now)
		if err := f.writeState(c); err != nil {
			return err
		}
		st.Health, st.Committed, st.Trial, st.Last, st.Action = "committed", st.Booted, "", c.Last, "run"
		fmt.Fprintf(out, "rfs: update: slot %s (version %s) is healthy: committed\n", st.Booted, st.Version)
		return nil
	}
	r := s.RollBack("health check failed: "+reason, now)
	if err := rollBackPi(f, s); err != nil {
		return err
	}
	if err := f.writeState(r); err != nil {
		return err
	}
	st.Health, st.Last = "failed: "+reason, r.Last
	fmt.Fprintf(out, "rfs: update: slot %s failed its health check (%s): rebooting into slot %s\n", st.Booted, reason, s.Committed)
	return nil
}

// checkHealth says why the system is not healthy, "" when it is: a
// supervised service that had to be restarted, or the configured
// command failing.
func checkHealth(cfg slots.Config) string {
	if r := restartedServices(ServicesDir); r != "" {
		return r
	}
	if cfg.HealthCommand == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthCommandTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cfg.HealthCommand)
	cmd.Stdout, cmd.Stderr, cmd.Env = &out, &out, InitEnv
	if err := cmd.Run(); err != nil {
		last := strings.TrimSpace(out.String())
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		if len(last) > 200 {
			last = last[:200]
		}
		msg := fmt.Sprintf("command %q: %v", cfg.HealthCommand, err)
		if last != "" {
			msg += ": " + last
		}
		return msg
	}
	return ""
}

// restartedServices names the services started more than once.
func restartedServices(dir string) string {
	ents, _ := os.ReadDir(dir)
	var bad []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".starts")
		if !ok {
			continue
		}
		b, err := readBounded(filepath.Join(dir, e.Name()), 32)
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 1 {
			bad = append(bad, fmt.Sprintf("service %s was restarted (%d starts)", name, n))
		}
	}
	return strings.Join(bad, "; ")
}

func readUpdateConfig(stderr io.Writer) slots.Config {
	b, err := readBounded(slots.ConfigFile, slots.MaxStateFile)
	if err != nil {
		return slots.Config{}
	}
	c, err := slots.ParseConfig(b)
	if err != nil {
		fmt.Fprintf(stderr, "rfs: update: warning: %v: default health check\n", err)
	}
	return c
}

func readSlotStatus(p string) (*SlotStatus, error) {
	b, err := readBounded(p, slots.MaxStateFile)
	if err != nil {
		return nil, err
	}
	var st SlotStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &st, nil
}

// rebootSystem asks init (PID 1) for an orderly reboot (busybox init:
// SIGTERM), and reboots outright if that has not happened in 30 s.
func rebootSystem(stderr io.Writer) {
	unix.Sync()
	if err := unix.Kill(1, unix.SIGTERM); err == nil {
		time.Sleep(30 * time.Second)
	}
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Fprintf(stderr, "rfs: reboot: %v\n", err)
	}
}
