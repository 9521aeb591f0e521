package overlay

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/slots"
)

const piCfg = "[all]\narm_64bit=1\nkernel=kernel8.img\n[all]\nos_prefix=slot-a/\n"

// piFAT is a directory standing for a slotted Pi boot partition with
// slot b on trial.
func piFAT(t *testing.T, firmware, config string) *bootFAT {
	t.Helper()
	dir := t.TempDir()
	s := slots.New("1", "x", nil, "r-02", "r-03")
	s.Firmware = firmware
	s = s.Ready(slots.B, slots.SlotInfo{Version: "2"}).Armed()
	for name, data := range map[string]string{
		slots.PiConfig: config, slots.PiTrybootConfig: strings.Replace(piCfg, "slot-a/", "slot-b/", 1),
		slots.FirmwareFile: "a\n", slots.StateFile: string(s.Marshal()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &bootFAT{dir: dir}
}

func readIn(t *testing.T, f *bootFAT, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Settling a Pi trial: a commit points config.txt at the trial slot and
// tryboot.txt at the other, then slot.txt and the record; a rollback
// points config.txt back at the committed slot (a Pi 3 trial switched
// it).
func TestSettleTrialPi(t *testing.T) {
	for _, tc := range []struct {
		name, firmware, config, reason string
		wantCfg, wantTry, wantSlot     string
	}{
		{"commit tryboot", slots.FirmwareRPi, piCfg, "", "slot-b/", "slot-a/", "b\n"},
		{"commit switch", slots.FirmwareRPiSwitch, strings.Replace(piCfg, "slot-a/", "slot-b/", 1), "", "slot-b/", "slot-a/", "b\n"},
		{"rollback switch", slots.FirmwareRPiSwitch, strings.Replace(piCfg, "slot-a/", "slot-b/", 1), "app failed", "slot-a/", "slot-b/", "a\n"},
		{"rollback tryboot", slots.FirmwareRPi, piCfg, "app failed", "slot-a/", "slot-b/", "a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := piFAT(t, tc.firmware, tc.config)
			st := &SlotStatus{Booted: slots.B, Version: "2"}
			if err := settleTrial(f, st, tc.reason, io.Discard); err != nil {
				t.Fatal(err)
			}
			cfg, try := readIn(t, f, slots.PiConfig), readIn(t, f, slots.PiTrybootConfig)
			if slots.OSPrefix([]byte(cfg)) != tc.wantCfg || slots.OSPrefix([]byte(try)) != tc.wantTry || readIn(t, f, slots.FirmwareFile) != tc.wantSlot {
				t.Errorf("config.txt %q, tryboot.txt %q, slot.txt %q", cfg, try, readIn(t, f, slots.FirmwareFile))
			}
			if !strings.Contains(cfg, "kernel=kernel8.img\n") || strings.Count(cfg, "os_prefix=") != 1 {
				t.Errorf("config.txt lost its lines: %q", cfg)
			}
			s, err := slots.Parse([]byte(readIn(t, f, slots.StateFile)))
			if err != nil {
				t.Fatal(err)
			}
			want := slots.A
			if tc.reason == "" {
				want = slots.B
			}
			if s.Committed != want || s.Trial != "" {
				t.Errorf("record %s", s.Marshal())
			}
			if _, err := os.Stat(filepath.Join(f.dir, slots.PiConfig+".new")); err == nil {
				t.Error("a temporary file is left")
			}
		})
	}
}

// A Pi 3 trial's boots are counted; past MaxSwitchTries its init points
// config.txt back at the committed slot, records the rollback and
// reboots.
func TestCountSwitchTrial(t *testing.T) {
	f := piFAT(t, slots.FirmwareRPiSwitch, strings.Replace(piCfg, "slot-a/", "slot-b/", 1))
	rebooted := 0
	b := &Boot{Out: io.Discard, Reboot: func() { rebooted++ }}
	for boot := 1; boot <= slots.MaxSwitchTries+1; boot++ {
		s, err := f.state()
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.countSwitchTrial(f, s)
		if last := boot == slots.MaxSwitchTries+1; last != (err != nil) || last != (rebooted == 1) {
			t.Fatalf("boot %d: %v, %d reboots", boot, err, rebooted)
		}
	}
	s, _ := f.state()
	if s.Trial != "" || s.Committed != slots.A || s.Last == nil || s.Last.Outcome != slots.RolledBack {
		t.Errorf("record %s", s.Marshal())
	}
	if cfg := readIn(t, f, slots.PiConfig); slots.OSPrefix([]byte(cfg)) != "slot-a/" {
		t.Errorf("config.txt %q", cfg)
	}
}
