package datapart

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type crashed string

// withCrashAt runs f with a crash (panic) after the k-th durable step of
// d; it returns the step's name, or "" if f finished first.
func withCrashAt(d *Dir, k int, f func()) (at string) {
	n := 0
	d.Step = func(s string) {
		n++
		if n == k {
			panic(crashed(s))
		}
	}
	defer func() {
		d.Step = nil
		if r := recover(); r != nil {
			c, ok := r.(crashed)
			if !ok {
				panic(r)
			}
			at = string(c)
		}
	}()
	f()
	return ""
}

func makeDataDir(t *testing.T) Dir {
	d := t.TempDir()
	for _, p := range []string{"upper/etc", "work/work", "volumes/app", "identity"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	os.WriteFile(filepath.Join(d, "upper/etc/m"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(d, "volumes/app/v"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(d, "identity/ssh_host_ed25519_key"), []byte("k"), 0o600)
	return Dir{Path: d}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestResetStepsIdempotent: a crash after any step of a reset, then the
// next boot's ResumeReset: always completely reset (the intent is the
// first durable step), volumes and the identity (SSH host keys) kept
// unless all; the state records it.
func TestResetStepsIdempotent(t *testing.T) {
	for _, all := range []bool{false, true} {
		for k := 1; ; k++ {
			d := makeDataDir(t)
			at := withCrashAt(&d, k, func() {
				if _, err := d.ScheduleReset(TriggerCmdline, all, time.Now()); err != nil {
					t.Fatal(err)
				}
				if _, err := d.ResumeReset(time.Now()); err != nil {
					t.Fatal(err)
				}
			})
			// Next boot.
			if _, err := d.ResumeReset(time.Now()); err != nil {
				t.Fatalf("all=%v k=%d (%s): resume: %v", all, k, at, err)
			}
			if err := d.EnsureLayout(); err != nil {
				t.Fatal(err)
			}
			if exists(filepath.Join(d.Path, "upper/etc/m")) || exists(filepath.Join(d.Path, ResetIntentFile)) {
				t.Errorf("all=%v k=%d (%s): not reset", all, k, at)
			}
			if exists(filepath.Join(d.Path, "volumes/app/v")) == all {
				t.Errorf("all=%v k=%d (%s): volume present=%v", all, k, at, !all)
			}
			if exists(filepath.Join(d.Path, Identity, "ssh_host_ed25519_key")) == all {
				t.Errorf("all=%v k=%d (%s): identity present=%v", all, k, at, !all)
			}
			st, err := d.ReadState()
			if err != nil || st.LastReset == nil || st.LastReset.Trigger != TriggerCmdline || st.LastReset.All != all || st.Resets != 1 {
				t.Errorf("all=%v k=%d (%s): state %+v %v", all, k, at, st, err)
			}
			if err := d.RemoveTrash(); err != nil || len(d.TrashEntries()) != 0 {
				t.Errorf("trash: %v %v", err, d.TrashEntries())
			}
			names, _ := os.ReadDir(d.Path)
			var got []string
			for _, n := range names {
				got = append(got, n.Name())
			}
			want := []string{Identity, StateFile, Trash, Upper, Volumes, Work}
			if all { // no new identity until the agent makes one
				want = want[1:]
			}
			if !slices.Equal(got, want) {
				t.Errorf("all=%v k=%d: data dir has %q, want %q", all, k, got, want)
			}
			if at == "" {
				break
			}
		}
	}
}

// TestResetHost is what `rfs reset --now` does on a mounted data dir.
func TestResetHost(t *testing.T) {
	d := makeDataDir(t)
	rec, err := d.Reset(TriggerHost, false)
	if err != nil || rec.Trigger != TriggerHost {
		t.Fatalf("%+v %v", rec, err)
	}
	if exists(filepath.Join(d.Path, "upper/etc")) || !exists(filepath.Join(d.Path, "volumes/app/v")) || len(d.TrashEntries()) != 0 {
		t.Error("not reset, or volume wiped, or trash left")
	}
}

// TestResetIdentity: the SSH host keys survive a factory reset and go to
// the trash with the volumes on reset --all; a data dir without an
// identity resets fine.
func TestResetIdentity(t *testing.T) {
	key := func(d Dir) string { return filepath.Join(d.Path, Identity, "ssh_host_ed25519_key") }
	d := makeDataDir(t)
	if _, err := d.Reset(TriggerHost, false); err != nil || !exists(key(d)) {
		t.Fatalf("factory reset: %v, key kept=%v", err, exists(key(d)))
	}
	if _, err := d.ScheduleReset(TriggerCommand, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	rec, err := d.ResumeReset(time.Now())
	if err != nil || exists(filepath.Join(d.Path, Identity)) {
		t.Fatalf("reset --all: %+v %v, identity kept=%v", rec, err, exists(filepath.Join(d.Path, Identity)))
	}
	if !exists(filepath.Join(d.Path, Trash, rec.ID+"-"+Identity, "ssh_host_ed25519_key")) {
		t.Errorf("identity not in the trash: %v", d.TrashEntries())
	}
	if _, err := d.Reset(TriggerHost, true); err != nil {
		t.Errorf("reset --all without an identity: %v", err)
	}
}

// TestUpperRecord: written and read back; a reset moves it away with the
// upper (the init writes a new one for the lower it boots); hostile
// content is an error, not a crash or a huge allocation.
func TestUpperRecord(t *testing.T) {
	d := makeDataDir(t)
	if rec, err := d.ReadUpperRecord(); rec != nil || err != nil {
		t.Fatalf("no record: %+v %v", rec, err)
	}
	if err := d.WriteUpperRecord(&UpperRecord{LowerBuildID: "abc123"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(d.Path, UpperRecordFile)); string(b) != `{"lower_build_id":"abc123"}`+"\n" {
		t.Errorf("record file %q", b)
	}
	if rec, err := d.ReadUpperRecord(); err != nil || rec.LowerBuildID != "abc123" {
		t.Fatalf("read back: %+v %v", rec, err)
	}
	if _, err := d.Reset(TriggerHost, false); err != nil {
		t.Fatal(err)
	}
	if rec, err := d.ReadUpperRecord(); rec != nil || err != nil {
		t.Errorf("after a reset: %+v %v, want no record", rec, err)
	}
	for _, bad := range []string{"", "{", "[1]", strings.Repeat(" ", maxRecord+1)} {
		if _, err := ParseUpperRecord(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseUpperRecord(%.10q...) accepted", bad)
		}
	}
}

func TestParseVolumes(t *testing.T) {
	vols, warns := ParseVolumes(strings.NewReader("# c\napp /var/lib/app\n\n  wifi   /etc/wpa_supplicant # x\nAPP /x\nbad /rel/../x\nrel x\ndup /var/lib/app\nroot /\nthree a b\n"))
	if len(vols) != 2 || vols[0] != (Volume{Name: "app", Path: "/var/lib/app"}) || vols[1] != (Volume{Name: "wifi", Path: "/etc/wpa_supplicant"}) {
		t.Errorf("volumes %+v", vols)
	}
	if len(warns) != 6 {
		t.Errorf("warnings %q", warns)
	}
}
