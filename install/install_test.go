package install

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/slots"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	return buf.Bytes()
}

type fixture struct {
	dev   *Device
	blobs map[string][]byte // what the "registry" serves, by digest
	rootB string
}

// newFixture is a device booted from slot a: the boot partition as a
// directory, the slots' roots as files.
func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot")
	os.MkdirAll(filepath.Join(boot, "slot-a"), 0o755)
	os.MkdirAll(filepath.Join(boot, "slot-b"), 0o755)
	os.WriteFile(filepath.Join(boot, "slot-b", "stale"), []byte("an older release's file"), 0o644)
	kernel, initrd := []byte("kernel v1"), []byte("initrd v1")
	os.WriteFile(filepath.Join(boot, "slot-a", "vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(boot, "slot-a", "initramfs.img"), initrd, 0o644)
	rootA, rootB := filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")
	os.WriteFile(rootA, []byte("squashfs v1"), 0o644)
	os.WriteFile(rootB, make([]byte, 4096), 0o644)
	st := slots.New("1", "id1", []slots.Part{
		{Name: "kernel", Digest: digest(kernel), Size: int64(len(kernel))},
		{Name: "initramfs", Digest: digest(initrd), Size: int64(len(initrd))},
	}, "11111111-aaaa", "22222222-bbbb")
	os.WriteFile(filepath.Join(boot, slots.StateFile), st.Marshal(), 0o644)
	return &fixture{
		dev: &Device{
			Target: DirTarget{Boot: boot, Roots: map[string]string{"a": rootA, "b": rootB}},
			Booted: "a", StageDir: filepath.Join(dir, "data", "update"), KernelName: "vmlinuz", Free: StatfsFree,
			Cmdline: "console=ttyAMA0 rfs.root=PARTUUID=11111111-aaaa rfs.slot=a rfs.data=PARTUUID=dd rfs.boot=PARTUUID=bb",
		},
		blobs: map[string][]byte{}, rootB: rootB,
	}
}

func (f *fixture) part(name, role string, b []byte) Part {
	f.blobs[digest(b)] = b
	return Part{Name: name, Role: role, Digest: digest(b), Size: int64(len(b))}
}

func (f *fixture) fetch(fetched *[]string) Fetcher {
	return func(_ context.Context, p Part, dst string, progress func(done, total int64)) error {
		*fetched = append(*fetched, p.Name)
		progress(p.Size, p.Size)
		return os.WriteFile(dst, f.blobs[p.Digest], 0o644)
	}
}

func TestInstall(t *testing.T) {
	f := newFixture(t)
	rel := Release{Version: "2", BuildID: "id2", Config: []byte(`{"version":"2"}`), Parts: []Part{
		f.part("kernel", RoleKernel, []byte("kernel v1")),
		f.part("initramfs", RoleInitramfs, []byte("initrd v2")),
		f.part("boot-files", RoleBootFiles, tarOf(t, map[string]string{"cmdline.txt": "console=ttyAMA0 rfs.root=PARTUUID=other rfs.slot=a rfs.data=PARTUUID=x panic=5\n", "rfs.json": "{}"})),
		f.part("root", RoleRoot, []byte("squashfs v2")),
	}}
	var fetched []string
	slot, err := f.dev.Install(context.Background(), rel, f.fetch(&fetched))
	if err != nil || slot != "b" {
		t.Fatalf("Install = %q, %v", slot, err)
	}
	if strings.Join(fetched, ",") != "initramfs,boot-files,root" {
		t.Errorf("fetched %v; the kernel the running slot has must not be", fetched)
	}
	read := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(f.dev.Target.(DirTarget).Boot, p))
		return string(b)
	}
	if got := read("slot-b/vmlinuz"); got != "kernel v1" {
		t.Errorf("slot-b/vmlinuz = %q", got)
	}
	if got := read("slot-b/cmdline.txt"); got != "console=ttyAMA0 rfs.root=PARTUUID=22222222-bbbb rfs.slot=b rfs.data=PARTUUID=dd panic=5 rfs.boot=PARTUUID=bb\n" {
		t.Errorf("slot-b/cmdline.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.dev.Target.(DirTarget).Boot, "slot-b", "stale")); err == nil {
		t.Error("the slot's old files were not cleared")
	}
	if read("slot-b/rfs.json") != "" || read("slot-b/release.json") != `{"version":"2"}` {
		t.Error("slot-b: rfs.json must not be taken from the release; release.json must be its config")
	}
	if b, _ := os.ReadFile(f.rootB); !bytes.HasPrefix(b, []byte("squashfs v2")) {
		t.Errorf("root b = %q", b[:16])
	}
	s, _ := f.dev.State()
	if s.Trial != "b" || s.Slots["b"].State != slots.Ready || s.Slots["b"].Version != "2" || s.Slots["b"].Root != "22222222-bbbb" {
		t.Fatalf("state after install: %+v", s)
	}
	if err := f.dev.Arm(); err != nil {
		t.Fatal(err)
	}
	if s, _ = f.dev.State(); s.Tries != 1 || read(slots.TrybootFile) != "b\n" {
		t.Fatalf("armed: %+v, tryboot %q", s, read(slots.TrybootFile))
	}
	if _, err := os.Stat(f.dev.StageDir); !os.IsNotExist(err) {
		t.Error("the staged downloads are left behind")
	}
}

func TestInstallRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(f *fixture, rel *Release)
		want string
	}{
		{"layer", func(f *fixture, rel *Release) {
			rel.Parts = append(rel.Parts, f.part("layer-1", "layer", []byte("l")))
		}, "no layers"},
		{"root too big", func(f *fixture, rel *Release) {
			rel.Parts[2] = f.part("root", RoleRoot, make([]byte, 8192))
		}, "holds 4.0 KiB"},
		{"no kernel", func(f *fixture, rel *Release) { rel.Parts = rel.Parts[1:] }, "no kernel"},
		{"bad bytes", func(f *fixture, rel *Release) {
			f.blobs[rel.Parts[2].Digest] = []byte("squashfs vX")
		}, "digest"},
		{"trial running", func(f *fixture, rel *Release) {
			s, _ := f.dev.State()
			s = s.Ready("b", slots.SlotInfo{}).Armed()
			f.dev.writeState(s)
			f.dev.Booted = "b"
		}, "on trial"},
		{"boot file escaping", func(f *fixture, rel *Release) {
			rel.Parts = append(rel.Parts, f.part("boot-files", RoleBootFiles, tarOf(t, map[string]string{"../x": "y"})))
		}, "plain relative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rel := Release{Version: "2", Parts: []Part{
				f.part("kernel", RoleKernel, []byte("kernel v2")),
				f.part("initramfs", RoleInitramfs, []byte("initrd v2")),
				f.part("root", RoleRoot, []byte("squashfs v2")),
			}}
			tt.edit(f, &rel)
			var fetched []string
			_, err := f.dev.Install(context.Background(), rel, f.fetch(&fetched))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Install: %v, want an error with %q", err, tt.want)
			}
			if s, _ := f.dev.State(); s.Trial != "" && tt.name != "trial running" {
				t.Errorf("a refused update armed a trial: %+v", s)
			}
		})
	}
}

func TestVerified(t *testing.T) {
	data := []byte("the part's bytes")
	p := Part{Name: "x", Digest: digest(data), Size: int64(len(data))}
	tests := []struct {
		name string
		src  []byte
		ok   bool
	}{
		{"right", data, true},
		{"other bytes", []byte("the part's bytez"), false},
		{"short", data[:5], false},
		{"long", append(append([]byte{}, data...), '!'), false},
	}
	for _, tt := range tests {
		buf := make([]byte, p.Size)
		// io.ReadFull drops an error that comes with the last bytes: the
		// failure must come before them.
		_, err := io.ReadFull(Verified(bytes.NewReader(tt.src), p), buf)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ReadFull error %v, want ok=%v", tt.name, err, tt.ok)
		}
		if tt.ok {
			if got, err := io.ReadAll(Verified(bytes.NewReader(tt.src), p)); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: ReadAll = %q, %v", tt.name, got, err)
			}
		}
	}
}
