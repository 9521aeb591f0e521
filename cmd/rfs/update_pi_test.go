package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/updatesig"
)

// rfs update of a slotted rpi4 image from an OCI layout: slot b gets
// kernel8.img, the device trees and overlays (with README), a cmdline.txt
// booting root b; config.txt and tryboot.txt stay the device's (the
// init arms the trial at the next boot).
func TestUpdatePiImage(t *testing.T) {
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := updatesig.MarshalPublicKey(pub)
	b, _ := boards.Lookup("rpi4")
	build := func(version string) string {
		res, err := builder.Build(context.Background(), builder.Config{
			Board: b, Output: filepath.Join(t.TempDir(), "v"+version+".img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
			Version: version, Update: &builder.UpdateSettings{Config: slots.Config{PublicKey: string(pem)}},
		})
		if err != nil {
			if strings.Contains(err.Error(), "module proxy") {
				t.Skipf("modules unavailable: %v", err)
			}
			t.Fatal(err)
		}
		return res.Path
	}
	v1, v2 := build("1"), build("2")
	layout := "oci-layout:" + filepath.Join(t.TempDir(), "layout") + ":v2"
	if _, err := bundle.Push(context.Background(), v2, layout, bundle.Options{Signer: bundle.SignWith(priv)}); err != nil {
		t.Fatal(err)
	}
	if err := runUpdate(context.Background(), io.Discard, v1, layout, false); err != nil {
		t.Fatal(err)
	}
	img, err := image.OpenImage(v1)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	p, _ := img.Boot()
	read := func(name string) string {
		d, err := img.ReadFileMax(p.Placed, name, 64<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(d)
	}
	for _, name := range append([]string{"kernel8.img", "initramfs.img", "overlays/README", "overlays/vc4-kms-v3d.dtbo", "release.json"}, b.Pi.DTBs...) {
		read("slot-b/" + name)
	}
	st, err := img.ReadSlots()
	if err != nil {
		t.Fatal(err)
	}
	if st.Trial != "b" || st.Tries != 0 || st.Slots["b"].Version != "2" || st.Firmware != slots.FirmwareRPi {
		t.Errorf("record %s", st.Marshal())
	}
	if cmd := read("slot-b/cmdline.txt"); !strings.Contains(cmd, "rfs.root=PARTUUID="+st.Slots["b"].Root) || !strings.Contains(cmd, "rfs.slot=b") {
		t.Errorf("slot b's cmdline.txt %q", cmd)
	}
	if slots.OSPrefix([]byte(read("config.txt"))) != "slot-a/" || slots.OSPrefix([]byte(read("tryboot.txt"))) != "slot-b/" {
		t.Error("rfs update changed config.txt or tryboot.txt")
	}
	for _, fw := range b.Pi.Firmware {
		if _, err := img.ReadFileMax(p.Placed, "slot-b/"+fw, 64<<20); err == nil {
			t.Errorf("slot b took the firmware file %s", fw)
		}
	}
}
