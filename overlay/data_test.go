package overlay

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

type crashed string

// withCrashAt runs f with a crash (panic) after the k-th durable step; it
// returns the step's name, or "" if f finished first.
func withCrashAt(k int, f func()) (at string) {
	n := 0
	crashHook = func(s string) {
		n++
		if n == k {
			panic(crashed(s))
		}
	}
	defer func() {
		crashHook = nil
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

func makeDataDir(t *testing.T) string {
	d := t.TempDir()
	for _, p := range []string{"upper/etc", "work/work", "volumes/app"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	os.WriteFile(filepath.Join(d, "upper/etc/m"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(d, "volumes/app/v"), []byte("1"), 0o644)
	return d
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestResetStepsIdempotent: a crash after any step of a reset, then the
// next boot's ResumeReset: always completely reset (the intent is the
// first durable step), volumes kept unless all; the state records it.
func TestResetStepsIdempotent(t *testing.T) {
	for _, all := range []bool{false, true} {
		for k := 1; ; k++ {
			d := makeDataDir(t)
			at := withCrashAt(k, func() {
				if _, err := ScheduleReset(d, TriggerCmdline, all, time.Now()); err != nil {
					t.Fatal(err)
				}
				if _, err := ResumeReset(d, time.Now()); err != nil {
					t.Fatal(err)
				}
			})
			// Next boot.
			if _, err := ResumeReset(d, time.Now()); err != nil {
				t.Fatalf("all=%v k=%d (%s): resume: %v", all, k, at, err)
			}
			if err := EnsureDataLayout(d); err != nil {
				t.Fatal(err)
			}
			if exists(filepath.Join(d, "upper/etc/m")) || exists(filepath.Join(d, DataResetIntent)) {
				t.Errorf("all=%v k=%d (%s): not reset", all, k, at)
			}
			if exists(filepath.Join(d, "volumes/app/v")) == all {
				t.Errorf("all=%v k=%d (%s): volume present=%v", all, k, at, !all)
			}
			st, err := ReadDataState(d)
			if err != nil || st.LastReset == nil || st.LastReset.Trigger != TriggerCmdline || st.LastReset.All != all || st.Resets != 1 {
				t.Errorf("all=%v k=%d (%s): state %+v %v", all, k, at, st, err)
			}
			if err := RemoveTrash(d); err != nil || len(TrashEntries(d)) != 0 {
				t.Errorf("trash: %v %v", err, TrashEntries(d))
			}
			names, _ := os.ReadDir(d)
			var got []string
			for _, n := range names {
				got = append(got, n.Name())
			}
			if want := []string{DataStateFile, DataTrash, DataUpper, DataVolumes, DataWork}; !slices.Equal(got, want) {
				t.Errorf("all=%v k=%d: data dir has %q, want %q", all, k, got, want)
			}
			if at == "" {
				break
			}
		}
	}
}

// TestSeedVolumeOnce: seeding is all or nothing (a crash before the
// rename leaves only a temp dir, redone next time) and happens once.
func TestSeedVolumeOnce(t *testing.T) {
	d := makeDataDir(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a/b"), 0o750)
	os.WriteFile(filepath.Join(src, "a/b/f"), []byte("x"), 0o600)
	os.Symlink("a/b/f", filepath.Join(src, "l"))
	if at := withCrashAt(1, func() { SeedVolume(d, "new", src) }); at != "seed:copied" {
		t.Fatalf("crash at %q", at)
	}
	if exists(filepath.Join(d, "volumes/new")) {
		t.Fatal("half-seeded volume visible")
	}
	seeded, err := SeedVolume(d, "new", src)
	if err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if b, _ := os.ReadFile(filepath.Join(d, "volumes/new/l")); string(b) != "x" || exists(filepath.Join(d, "volumes/.seed-new")) {
		t.Errorf("seeded content %q", b)
	}
	if st, _ := os.Stat(filepath.Join(d, "volumes/new/a/b")); st.Mode().Perm() != 0o750 {
		t.Errorf("mode %v", st.Mode())
	}
	os.Remove(filepath.Join(d, "volumes/new/l"))
	if seeded, _ := SeedVolume(d, "new", src); seeded || exists(filepath.Join(d, "volumes/new/l")) {
		t.Error("seeded twice")
	}
	// A path the lower lacks: an empty volume.
	if seeded, err := SeedVolume(d, "empty", filepath.Join(src, "nope")); err != nil || !seeded {
		t.Errorf("empty volume: %v %v", seeded, err)
	}
}

// TestResetDataHost is what `rfs reset --now` does on a mounted data dir.
func TestResetDataHost(t *testing.T) {
	d := makeDataDir(t)
	rec, err := ResetData(d, TriggerHost, false)
	if err != nil || rec.Trigger != TriggerHost {
		t.Fatalf("%+v %v", rec, err)
	}
	if exists(filepath.Join(d, "upper/etc")) || !exists(filepath.Join(d, "volumes/app/v")) || len(TrashEntries(d)) != 0 {
		t.Error("not reset, or volume wiped, or trash left")
	}
}
