package qemu

import (
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
)

func TestArgs(t *testing.T) {
	b, _ := boards.Lookup("qemu-arm64")
	c := Config{QEMU: b.QEMU, Arch: b.Arch, Kernel: "/k", Initrd: "/i", Append: "console=ttyAMA0", Disk: "/d.img", OtherDisks: []string{"/o.img"}}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{
		"-machine virt", "-cpu cortex-a72", "-accel tcg", "-kernel /k", "-initrd /i", "-append console=ttyAMA0", "-no-reboot",
		"-drive file=/o.img,format=raw,if=virtio,snapshot=on -drive file=/d.img,format=raw,if=virtio,snapshot=on",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	c.Persist = true
	if got := strings.Join(c.Args(), " "); !strings.Contains(got, "file=/d.img,format=raw,if=virtio ") && !strings.HasSuffix(got, "file=/d.img,format=raw,if=virtio") {
		t.Errorf("--persist still snapshots: %q", got)
	}
}

func TestCheck(t *testing.T) {
	c := Config{QEMU: boards.QEMU{Binary: "qemu-system-does-not-exist"}}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "apt-get install") {
		t.Fatalf("Check = %v", err)
	}
	c = Config{QEMU: boards.QEMU{Binary: "true"}, Arch: "riscv64", KVM: true}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "--kvm needs") {
		t.Fatalf("Check(kvm, foreign arch) = %v", err)
	}
}
