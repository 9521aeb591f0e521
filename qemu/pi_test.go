package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

// TestForImagePi4USB: a Pi 4 image boots on QEMU's raspi4b with its dwc2
// USB controller turned on in QEMU's copy of the device tree (the image's
// stays as built), and the guest's NIC on it.
func TestForImagePi4USB(t *testing.T) {
	b, _ := boards.Lookup("rpi4")
	img := filepath.Join(t.TempDir(), "rpi4.img")
	if _, err := builder.Build(context.Background(), builder.Config{Board: b, Output: img, Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{}}); err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	c, _, err := ForImage(img, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !c.usbOn {
		t.Fatal("the dwc2 controller was not turned on")
	}
	if args := strings.Join(c.Args(), " "); !strings.Contains(args, "-device usb-net,netdev=rfsnet0,mac="+c.Net.MAC) {
		t.Errorf("args %q", args)
	}
	dtb, err := os.ReadFile(c.DTB)
	if err != nil {
		t.Fatal(err)
	}
	// Turned on already: enabling the copy's node again changes nothing.
	again := append([]byte(nil), dtb...)
	if err := enableNode(again, usbNodes["raspi4b"]); err != nil || !bytes.Equal(again, dtb) {
		t.Fatalf("the copy's dwc2 was still off (%v)", err)
	}
	if c.NetNote() != "" {
		t.Errorf("note %q", c.NetNote())
	}
}
