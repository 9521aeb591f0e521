package overlay

import (
	"os"
	"path/filepath"
	"testing"
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
